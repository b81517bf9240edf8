"""Local copies of hub datasets and models, for machines without the hub (CI, air-gapped users).

`EMBEDTRAIN_MIRROR=<file.yaml>` names a mirror file that maps hub ids to local paths:

    datasets:
      sentence-transformers/stsb:              # a hub id: one local file (or folder) per split
        train: stsb/train.csv
        test: stsb/test.csv
      sentence-transformers/all-nli/triplet:   # hub id/subset
        train: nli/triplets.csv
      org/retrieval-set: copies/retrieval-set  # one path: the whole dataset, read with the split asked for
    models:
      sentence-transformers/all-MiniLM-L6-v2: models/all-MiniLM-L6-v2

Relative paths are resolved from the mirror file's folder. Every place that loads a hub dataset or model asks here
first (data sources, retrieval sets, model bases, teachers, guides and decoders), so training, `validate-dataset`,
`eval` and `--dry-run` read the same copies; each copy used is logged (`mirror: sentence-transformers/stsb[train] ->
...`).
A hub id the mirror does not name is loaded from the hub as usual. The whole file is checked when it is first read:
an unknown key, a value of the wrong shape or a path that does not exist is an error naming the file and the key.
"""

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from embedtrain.errors import EmbedtrainError, ExitCode, did_you_mean

logger = logging.getLogger(__name__)

ENV_VAR = "EMBEDTRAIN_MIRROR"
SECTIONS = ("datasets", "models")
_SPLIT = re.compile(r"^([\w.-]+)(\[[^\]]*\])?$")  # a split and an optional slice: train, train[:1000], test[10%:]
_reported: set[tuple[str, Path]] = set()


class MirrorError(EmbedtrainError):
    """The mirror file (EMBEDTRAIN_MIRROR) cannot be used: missing, not YAML, or an entry that is wrong."""

    exit_code = ExitCode.INVALID_INPUT


@dataclass(frozen=True)
class LocalCopy:
    """Where a hub dataset (or one of its splits) is on disk.

    `split` is what to read from `path`: the split asked for when the entry maps the whole dataset, or `train` (the
    only split of a local file, as `datasets` names it) with the slice asked for when the entry maps that one split;
    `single_split` says which of the two.
    """

    path: Path
    split: str
    single_split: bool


@dataclass(frozen=True)
class Mirror:
    file: Path
    datasets: dict[str, Path | dict[str, Path]]
    models: dict[str, Path]


def active_mirror() -> Mirror | None:
    """The mirror `EMBEDTRAIN_MIRROR` names (read and checked once per file version), or None when it is unset."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    file = Path(value).expanduser()
    if not file.is_file():
        raise MirrorError(f"{ENV_VAR}={value}: no such file (a YAML mirror file mapping hub ids to local copies)")
    return _read_mirror(file.resolve(), file.stat().st_mtime_ns)


def dataset_copy(hub_id: str, subset: str | None, split: str, where: str) -> LocalCopy | None:
    """The local copy of `hub_id` (`hub_id/subset` when a subset is asked for) and `split`, or None when the mirror
    does not name it (or there is no mirror). `where` names the recipe key in errors."""
    mirror = active_mirror()
    key = f"{hub_id}/{subset}" if subset else hub_id
    if mirror is None or key not in mirror.datasets:
        return None
    entry = mirror.datasets[key]
    if isinstance(entry, Path):
        _report(f"{key}[{split}]", entry)
        return LocalCopy(entry, split, single_split=False)
    match = _SPLIT.match(split)
    if match is None:
        raise MirrorError(f"{where}: split {split!r} of {key!r} cannot be read from {mirror.file}, which maps that "
                          f"dataset split by split: ask for one split, optionally sliced (e.g. train[:1000])")
    name, slice_ = match.group(1), match.group(2) or ""
    if name not in entry:
        raise MirrorError(f"{where}: {mirror.file} maps {key!r} but not its split {name!r} (it maps "
                          f"{', '.join(entry)}){did_you_mean(name, list(entry))}; add `{name}: <path>` under it")
    _report(f"{key}[{name}]", entry[name])
    return LocalCopy(entry[name], f"train{slice_}", single_split=True)


def model_copy(hub_id: str) -> Path | None:
    """The local copy of model `hub_id`, or None when the mirror does not name it (or there is no mirror)."""
    mirror = active_mirror()
    if mirror is None or hub_id not in mirror.models:
        return None
    _report(hub_id, mirror.models[hub_id])
    return mirror.models[hub_id]


def hub_id_of(path: Path) -> str | None:
    """The hub id whose copy the mirror says `path` is (a model, or a dataset copied whole or split by split), or None."""
    mirror = active_mirror()
    if mirror is None:
        return None
    path = path.expanduser().resolve()
    for hub_id, copy in [*mirror.models.items(), *mirror.datasets.items()]:
        copies = copy.values() if isinstance(copy, dict) else [copy]
        if any(path == candidate.resolve() for candidate in copies):
            return hub_id
    return None


def _report(label: str, path: Path) -> None:
    """Log each copy once per process: a dataset is read more than once (checked, then trained on)."""
    if (label, path) not in _reported:
        _reported.add((label, path))
        logger.info("mirror: %s -> %s", label, _shown(path))


def _shown(path: Path) -> str:
    """`path` relative to the current directory when it is below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


@lru_cache(maxsize=4)
def _read_mirror(file: Path, mtime_ns: int) -> Mirror:  # mtime_ns: a changed file is read again
    try:
        content = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise MirrorError(f"{file}: not valid YAML{at} ({getattr(error, 'problem', None) or error})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MirrorError(f"{file}: cannot read it ({error})") from None
    if content is None:
        content = {}
    if not isinstance(content, dict):
        raise MirrorError(f"{file}: expected a mapping with `datasets:` and/or `models:`, got {type(content).__name__}")
    for key in content:
        if key not in SECTIONS:
            raise MirrorError(f"{file}: unknown key {key!r}{did_you_mean(str(key), list(SECTIONS))}; a mirror file "
                              f"has {' and '.join(SECTIONS)}")
    datasets = {key: _dataset_entry(file, key, value) for key, value in _section(file, content, "datasets").items()}
    models = {key: _path(file, f"models.{key!r}", value, max_slashes=1, key=key)
              for key, value in _section(file, content, "models").items()}
    for key, path in models.items():
        if not path.is_dir():
            raise MirrorError(f"{file}: models.{key!r}: {path} is a file; a model is a folder")
    return Mirror(file, datasets, models)


def _section(file: Path, content: dict, name: str) -> dict:
    section = content.get(name) or {}
    if not isinstance(section, dict):
        raise MirrorError(f"{file}: `{name}` must map hub ids to local paths, got {type(section).__name__}")
    return section


def _dataset_entry(file: Path, key, value) -> Path | dict[str, Path]:
    if not isinstance(value, dict):
        return _path(file, f"datasets.{key!r}", value, max_slashes=2, key=key)
    if not value:
        raise MirrorError(f"{file}: datasets.{key!r} maps no split; give `split: path` entries or one path")
    splits = {}
    for split, path in value.items():
        if not isinstance(split, str) or not _SPLIT.match(split) or "[" in split:
            raise MirrorError(f"{file}: datasets.{key!r}: {split!r} is not a split name (e.g. train, validation, test)")
        splits[split] = _path(file, f"datasets.{key!r}.{split}", path, max_slashes=2, key=key)
    return splits


def _path(file: Path, where: str, value, *, max_slashes: int, key) -> Path:
    """A checked local path: `key` must be a hub id and `value` a path that exists (relative to the mirror file)."""
    if not isinstance(key, str) or not key or key.startswith((".", "/", "~")) or key.count("/") > max_slashes:
        kind = "hub_id or hub_id/subset" if max_slashes == 2 else "hub id"
        raise MirrorError(f"{file}: {key!r} is not a {kind}; the mirror maps hub ids (local paths are read as they are)")
    if not isinstance(value, str) or not value.strip():
        raise MirrorError(f"{file}: {where}: expected a local path, got {value!r}")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else file.parent / path
    if not path.exists():
        raise MirrorError(f"{file}: {where}: {value} does not exist (relative paths are read from {file.parent})")
    return path
