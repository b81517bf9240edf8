"""Writing mined or scored rows (parquet or jsonl) with a provenance sidecar, and naming sources without local paths.

The sidecar, `<output>.provenance.json`, says where the rows came from (model, data and their fingerprints,
parameters, counts) so that a dataset built from them can be traced and rebuilt. It names a local model or file by
its folder or file name and a hub one by its id: nothing in it is a path of the machine that wrote it.
"""

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from embedtrain import __version__
from embedtrain.data.source import public_name
from embedtrain.errors import RecipeError
from embedtrain.evaluation.mining.mine import MiningResult
from embedtrain.evaluation.mining.options import MiningOptions
from embedtrain.evaluation.mining.pairs import PairRows

OUTPUT_SUFFIXES = (".parquet", ".jsonl")
SIDECAR_SUFFIX = ".provenance.json"


def sidecar_path(output: Path) -> Path:
    return output.with_name(output.name + SIDECAR_SUFFIX)


def check_output(output: Path, force: bool, option: str = "--output") -> None:
    """RecipeError, before any work, for an output that is not .parquet/.jsonl, or that exists (unless `force`)."""
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise RecipeError(f"{option} {str(output)!r}: write a .parquet or a .jsonl file")
    if output.is_dir():
        raise RecipeError(f"{option} {str(output)!r} is a folder; name the file to write")
    for path in (output, sidecar_path(output)):
        if path.exists() and not force:
            raise RecipeError(f"{option}: {str(path)!r} exists; pass --force to replace it, or choose another file")


def write_rows(columns: dict[str, list], output: Path, provenance: dict) -> None:
    """Write the rows (parquet or jsonl, by `output`'s suffix) and the sidecar, each complete or not at all."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with _replacing(output) as staging:
        if output.suffix.lower() == ".parquet":
            pq.write_table(pa.Table.from_pydict(columns), staging)
        else:
            names = list(columns)
            with staging.open("w", encoding="utf-8") as handle:
                for values in zip(*columns.values()):
                    handle.write(json.dumps(dict(zip(names, values)), ensure_ascii=False) + "\n")
    with _replacing(sidecar_path(output)) as staging:
        staging.write_text(json.dumps(provenance, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class _replacing:
    """A staging file beside `path`, renamed onto it when the block succeeds and removed when it fails."""

    def __init__(self, path: Path) -> None:
        self.path, self.staging = path, path.with_name(f".{path.name}.partial")

    def __enter__(self) -> Path:
        return self.staging

    def __exit__(self, kind, error, trace) -> bool:
        if error is None:
            os.replace(self.staging, self.path)
        else:
            self.staging.unlink(missing_ok=True)
        return False


def fingerprint(*columns: Iterable) -> str:
    """sha256 of the values of `columns`, in order: the same data gives the same fingerprint on any machine."""
    digest = hashlib.sha256()
    for column in columns:
        digest.update(b"\x1e")  # a column boundary
        for value in column:
            encoded = json.dumps(value, ensure_ascii=False).encode("utf-8")
            digest.update(len(encoded).to_bytes(8, "little") + encoded)
    return f"sha256:{digest.hexdigest()}"



def mining_provenance(command: str, model: str, kind: str, rescore: str | None, data: tuple[str, str], pairs: PairRows,
                      corpus: tuple[str, list[str]] | None, options: MiningOptions, result: MiningResult,
                      output: Path, rescore_activation: str | None = None, rescore_kind: str | None = None) -> dict:
    """The sidecar of mined rows: the models (the re-scoring one's kind as loaded, and the activation of a
    re-scoring cross-encoder's scores), the data (`data`: source and split) and corpus (source and texts) by name and
    fingerprint, the options as used (the derived range_max included), the output and the counts."""
    columns = {"anchor": pairs.anchor_column, "positive": pairs.positive_column, "label": pairs.label_column}
    return {
        "embedtrain": __version__,
        "command": command,
        "model": {"name": public_name(model), "kind": kind, "similarity": result.similarity},
        "rescore_model": public_name(rescore) if rescore else None,
        "rescore_kind": rescore_kind,
        "rescore_activation": rescore_activation,
        "data": {"source": public_name(data[0]), "split": data[1],
                 "columns": {role: column for role, column in columns.items() if column is not None},
                 "fingerprint": fingerprint(pairs.anchors, pairs.positives, pairs.labels or [])},
        "corpus": ({"source": public_name(corpus[0]), "texts": len(corpus[1]), "fingerprint": fingerprint(corpus[1])}
                   if corpus is not None else None),
        "options": options.model_dump() | {"range_max": result.range_max},
        "output": {"file": output.name, "format": options.output_format, "columns": list(result.columns)},
        "summary": result.summary.as_json(),
    }
