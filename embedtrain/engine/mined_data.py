"""A recipe's mining steps (`mine:`): hard negatives mined by the first `train` and reused by later runs.

The mined rows of a dataset are cached in OUTPUT_DIR/mined/<dataset>-<key>.parquet, beside their provenance sidecar
(`embedtrain mine`'s, plus the key). The key is a hash of everything that decides the rows: the pairs (their columns
and a fingerprint of their values), the corpus, the mining and re-scoring models (their names and their files' sizes
and modification times) and the options. A later run or a `--resume` with the same key reuses the rows; any change
mines again into a file of its own (the older one stays, for a run that goes back to it).

The rows, then the sidecar, are each written to a staging file and renamed into place, and a cache counts only when
its sidecar names its key: a run killed while mining leaves nothing that a later run would trust.
"""

import gc
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from datasets import Dataset

from embedtrain.data.source import public_name
from embedtrain.engine.observer import TrainingObserver
from embedtrain.errors import DataError, ModelLoadError, RecipeError, TrainingError
from embedtrain.evaluation.mining.formats import output_columns
from embedtrain.evaluation.mining.mine import mine_negatives
from embedtrain.evaluation.mining.models import (
    load_embedder,
    load_rescorer,
    rescorer_kind,
    scorer_activation,
    scorer_kind,
)
from embedtrain.evaluation.mining.output import fingerprint, mining_provenance, sidecar_path, write_rows
from embedtrain.models.io import resolve_model_path
from embedtrain.recipe.plan import MiningStep

logger = logging.getLogger(__name__)

MINED_DIR = "mined"
CACHE_VERSION = 1
"""Part of every key: raised when what a cached file holds changes, so that older files are not trusted."""


@dataclass(frozen=True)
class MinedCache:
    """Where the mined rows of one mining step are (or will be) cached."""

    step: MiningStep
    path: Path
    key: str

    def rows(self) -> Dataset | None:
        """The cached rows, or None when there are none for this key (a missing or foreign sidecar, missing rows, or
        rows that cannot be read, which are then mined again)."""
        sidecar = sidecar_path(self.path)
        try:
            if json.loads(sidecar.read_text(encoding="utf-8")).get("cache_key") != self.key:
                return None
            return Dataset(pq.read_table(self.path))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:  # a damaged file: unreadable JSON or parquet
            logger.warning("%s: cannot read the cached mined rows %s (%s); mining again", self.step.where, self.path,
                           error)
            return None


def mining_caches(steps: list[MiningStep], output_dir: Path) -> list[MinedCache]:
    """The cache of each step, keyed by its data, models and options. Resolves the models (a hub id to its local
    copy), reading only their file listings and a re-scoring model's configuration (what it is); ModelLoadError or
    RecipeError (exit 2) naming the key for one that is not there or not of its `rescore_kind`."""
    caches = []
    for step in steps:
        mine = step.config.mine
        content = {
            "version": CACHE_VERSION,
            "pairs": {"anchor": step.pairs.anchor_column, "positive": step.pairs.positive_column,
                      "label": step.pairs.label_column,
                      "fingerprint": fingerprint(step.pairs.anchors, step.pairs.positives, step.pairs.labels or [])},
            "corpus": fingerprint(step.corpus) if step.corpus is not None else None,
            "model": _model_identity(mine.model, f"{step.where}.mine.model"),
            "kind": mine.kind,
            "rescore": _model_identity(mine.rescore, f"{step.where}.mine.rescore") if mine.rescore else None,
            "rescore_activation": mine.rescore_activation,
            "options": step.options.model_dump(mode="json"),
        }
        if mine.rescore:  # what the re-scorer is, from its folder: a dry run names a wrong kind too
            rescorer_kind(mine.rescore, mine.rescore_kind, f"{step.where}.mine.rescore",
                          f"{step.where}.mine.rescore_kind")
            # Keyed only with a re-scorer, so that the keys of rows mined without one stay what they were.
            content["rescore_kind"] = mine.rescore_kind
        key = hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()
        name = re.sub(r"[^\w.-]", "_", step.name)
        caches.append(MinedCache(step, output_dir / MINED_DIR / f"{name}-{key[:16]}.parquet", key))
    return caches


def _model_identity(name: str, where: str) -> dict:
    """A model by its name and its files (relative path, size, modification time): a model whose files change
    mines again. Cheaper than hashing the weights, and it errs on the safe side: a copied model mines again."""
    try:
        folder = resolve_model_path(name)
    except ModelLoadError as error:
        raise ModelLoadError(f"{where}: {error}") from None
    digest = hashlib.sha256()
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"name": public_name(name), "files": digest.hexdigest()}


def mine_or_reuse(caches: list[MinedCache], accelerator: Accelerator, observer: TrainingObserver
                  ) -> dict[str, Dataset]:
    """The mined rows of every step (its `where` -> rows): the cached ones, or mined now and cached. The main process
    mines; the others read what it wrote, and raise what it raised."""
    failure: list = [None]
    if accelerator.is_main_process:
        try:
            for cache in caches:
                if cache.rows() is None:
                    _mine(cache, observer)
                else:
                    logger.info("%s: reusing mined negatives from %s (same data, models and options)",
                                cache.step.where, cache.path)
        except Exception as error:
            if accelerator.num_processes > 1:
                broadcast_object_list([_described(error)])
            raise
    if accelerator.num_processes > 1:
        broadcast_object_list(failure)  # the main process's None when it succeeded; the others receive its outcome
        if failure[0] is not None:
            name, message = failure[0]
            kinds = {kind.__name__: kind for kind in (RecipeError, ModelLoadError, DataError, TrainingError)}
            raise kinds[name](message)
    return {cache.step.where: cache.rows() for cache in caches}


def _described(error: Exception) -> tuple[str, str]:
    """An error of the main process as the other processes raise it: its class (a user's error) and message."""
    if isinstance(error, (RecipeError, ModelLoadError, DataError, TrainingError)):
        return type(error).__name__, str(error)
    return "TrainingError", f"the main process failed while mining: {type(error).__name__}: {error}"


def _mine(cache: MinedCache, observer: TrainingObserver) -> None:
    """Mine one step's negatives and write them with their provenance; errors name the step's keys."""
    step, mine, options = cache.step, cache.step.config.mine, cache.step.options
    where = f"{step.where}.mine"
    logger.info("%s: mining negatives with %s (cached in %s)", step.where, public_name(mine.model), cache.path)
    rescorer = (load_rescorer(mine.rescore, mine.rescore_kind, mine.rescore_activation, f"{where}.rescore",
                              f"{where}.rescore_kind", f"{where}.rescore_activation") if mine.rescore else None)
    model = load_embedder(mine.model, mine.kind, f"{where}.model", f"{where}.kind", f"{where}.rescore")
    kind = "sparse" if model.model_type == "SparseEncoder" else "dense"
    activation = scorer_activation(rescorer)
    rescored_as = scorer_kind(rescorer) if rescorer is not None else None
    try:
        with observer.mining(step.where) as progress:
            result = mine_negatives(model, step.data, options, rescorer, progress)
    except (DataError, RecipeError) as error:  # nothing to mine with these options, or a model that cannot
        raise type(error)(f"{where}: {error}") from None
    finally:
        del model, rescorer  # the models that mined are not needed for training: free their memory first
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    provenance = mining_provenance(
        "train", mine.model, kind, mine.rescore, (step.config.source, step.config.split),
        step.pairs, (mine.corpus.source, step.corpus) if mine.corpus is not None else None, options, result,
        cache.path, activation, rescored_as)
    write_rows(result.columns, cache.path, provenance | {"dataset": step.where, "cache_key": cache.key})
    scored_by = (f"re-scored by {public_name(mine.rescore)}" if mine.rescore else
                 f"{public_name(mine.model)}, {result.similarity}")
    observer.on_mined(step.where, result.summary, options, result.range_max, scored_by, cache.path)


def stand_in_rows(step: MiningStep) -> Dataset:
    """Rows of the shape mining writes, as many as it can write (every query with all its negatives), whose negatives
    are other queries' positives and whose scores are 0: what a dry run sizes and times the run with before anything
    is mined. Nothing is mined and no model is loaded."""
    data, options = step.data, step.options
    negatives = [_other_rows(len(data.corpus), positives, options.num_negatives) for positives in data.positives]
    scores = [[0.0] * len(rows) for rows in negatives]
    positive_scores = [0.0] * sum(len(positives) for positives in data.positives)
    return Dataset.from_dict(output_columns(data, negatives, scores, positive_scores, options))


def _other_rows(corpus_size: int, positives: list[int], count: int) -> list[int]:
    """`count` corpus rows that are not `positives`, the first ones after the first positive (wrapping around)."""
    rows = []
    for offset in range(1, corpus_size):
        row = (positives[0] + offset) % corpus_size
        if row not in positives:
            rows.append(row)
            if len(rows) == count:
                break
    return rows
