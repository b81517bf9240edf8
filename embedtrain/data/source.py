"""Where a dataset comes from (a hub id or a local file/folder) and how it is loaded."""

from pathlib import Path

import datasets
from pydantic import Field

from embedtrain.config import StrictModel
from embedtrain.data.mirror import ENV_VAR, MirrorError, dataset_copy, hub_id_of
from embedtrain.errors import DataError, did_you_mean

LOCAL_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".arrow": "arrow"}
"""File suffix -> `datasets` builder for local files."""

Scalar = str | int | float | bool


class DataSource(StrictModel):
    """A dataset: a hub id or a local path, which split, and which columns feed which input."""

    source: str = Field(description="hub dataset id (org/name; a local copy when EMBEDTRAIN_MIRROR maps it) or a local "
                        "file or folder (csv, tsv, json, jsonl, parquet, arrow)")
    subset: str | None = Field(None, description="hub configuration name")
    split: str = Field("train", description="split, with optional slicing such as train[:1000]; a local file is the 'train' split")
    revision: str | None = Field(None, description="hub revision (branch, tag or commit)")
    columns: dict[str, str | list[str]] | None = Field(
        None, description="input -> column, e.g. {anchor: question, positive: answer, label: score}; "
        "without it, the label is taken by name and the inputs by position")
    ignore_columns: list[str] = Field(default_factory=list, description="columns that are deliberately not used")
    max_samples: int | None = Field(None, gt=0, description="keep only the first N rows (after shuffling, if shuffle_seed is set)")
    shuffle_seed: int | None = Field(None, description="shuffle the rows with this seed before max_samples")
    where: dict[str, Scalar | list[Scalar]] = Field(
        default_factory=dict, description="keep only the rows whose column holds this value (or one of these "
        "values), e.g. {label: 1} for the positive pairs of a labelled set; a column named here is not an input "
        "unless `columns:` maps it")

    def ignored_columns(self) -> list[str]:
        """`ignore_columns`, plus the columns only used by `where`."""
        mapped = {column for value in (self.columns or {}).values()
                  for column in ([value] if isinstance(value, str) else value)}
        return [*self.ignore_columns, *(column for column in self.where if column not in mapped)]


def keep_rows(dataset: datasets.Dataset | datasets.IterableDataset, config: DataSource, where: str):
    """The rows that `config.where` keeps (all of them without it)."""
    if not config.where:
        return dataset
    columns = dataset.column_names
    if columns is not None:
        for column in config.where:
            if column not in columns:
                raise DataError(f"{where}.where: {column!r} is not a column of the data (columns: {columns})"
                                f"{did_you_mean(column, columns)}")
    wanted = {column: set(value) if isinstance(value, list) else {value} for column, value in config.where.items()}
    return dataset.filter(lambda row: all(row[column] in values for column, values in wanted.items()))


def is_local(source: str) -> bool:
    """A source is local if it exists on disk or looks like a path; otherwise it is a hub id."""
    path = Path(source).expanduser()
    return path.exists() or path.suffix in LOCAL_BUILDERS or source.startswith((".", "/", "~")) or source.count("/") > 1


def public_name(source: str) -> str:
    """`source` as it may appear in what a run writes for others (model cards, provenance files): a hub id as it is;
    a local path without this machine's layout: the hub id the mirror copies there, else the path relative to the
    current directory when below it, else its last component."""
    if not is_local(source):
        return source
    path = Path(source).expanduser()
    if (hub_id := hub_id_of(path)) is not None:
        return hub_id
    if not path.is_absolute():
        return source
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


def load_stream(config: DataSource, where: str) -> datasets.IterableDataset:
    """Open the rows `config` describes as a stream, read lazily (for data that does not fit in memory)."""
    try:
        stream = _load(config, where, streaming=True)
    except (DataError, MirrorError):
        raise
    except Exception as error:  # as in load_source
        raise DataError(f"{where}: cannot stream {config.source!r} (split {config.split!r}): {type(error).__name__}: {error}") from error
    if isinstance(stream, datasets.Dataset):  # a folder saved with save_to_disk
        stream = stream.to_iterable_dataset()
    stream = keep_rows(stream, config, where)
    return stream.take(config.max_samples) if config.max_samples is not None else stream


def load_source(config: DataSource, where: str) -> datasets.Dataset:
    """Load the rows `config` describes; `where` (e.g. `datasets.train.stsb`) names it in errors."""
    try:
        dataset = _load(config, where)
    except (DataError, MirrorError):
        raise
    except Exception as error:  # datasets raises many unrelated types; all mean "cannot load this"
        if "corresponds to no data" in str(error):  # how datasets says a file has a header and no rows
            raise DataError(f"{where}: the dataset has no rows ({config.source!r}, split {config.split!r})") from error
        raise DataError(f"{where}: cannot load {config.source!r} (split {config.split!r}): {type(error).__name__}: {error}") from error
    if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDataset, datasets.IterableDatasetDict)):
        raise DataError(f"{where}: {config.source!r} did not load as a single split; set `split:`")
    dataset = keep_rows(dataset, config, where)
    if len(dataset) == 0:
        raise DataError(f"{where}.where: no row of {config.source!r} matches {config.where}")
    if config.shuffle_seed is not None:
        dataset = dataset.shuffle(seed=config.shuffle_seed)
    if config.max_samples is not None:
        dataset = dataset.select(range(min(config.max_samples, len(dataset))))
    # Materialise shuffling/selection, so that row numbers in error messages are those of the rows used.
    return dataset.flatten_indices() if dataset._indices is not None else dataset


def _load(config: DataSource, where: str, streaming: bool = False) -> datasets.Dataset | datasets.IterableDataset:
    if not is_local(config.source):
        copy = dataset_copy(config.source, config.subset, config.split, where)
        if copy is None:
            return datasets.load_dataset(config.source, config.subset, split=config.split, revision=config.revision,
                                         streaming=streaming)
        # The mirror maps this split to one file or folder, read as its single split; or the whole dataset (a folder
        # with its splits, or a copy saved with save_to_disk), read with the subset and split asked for.
        subset = None if copy.single_split else config.subset
        try:
            return _load_local(copy.path, copy.split, where, streaming, subset)
        except DataError:
            raise
        except Exception as error:  # as in load_source, naming the copy rather than the hub id
            raise DataError(f"{where}: cannot load {str(copy.path)!r}, the local copy of {config.source!r} (split "
                            f"{config.split!r}) that {ENV_VAR} maps: {type(error).__name__}: {error}") from error
    path = Path(config.source).expanduser()
    if not path.exists():
        raise DataError(f"{where}.source: {str(path)!r} does not exist (relative paths are resolved from the "
                        f"current directory, {Path.cwd()})")
    return _load_local(path, config.split, where, streaming, config.subset)  # a folder laid out as a hub dataset


def _load_local(path: Path, split: str, where: str, streaming: bool, subset: str | None = None
                ) -> datasets.Dataset | datasets.IterableDataset:
    if path.is_dir():
        if (path / "dataset_info.json").exists() and (path / "state.json").exists():
            return datasets.load_from_disk(str(path))
        return datasets.load_dataset(str(path), subset, split=split, streaming=streaming)
    builder = LOCAL_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataError(f"{where}.source: cannot tell the format of {str(path)!r}; use one of "
                        f"{', '.join(LOCAL_BUILDERS)}")
    if path.stat().st_size == 0:
        raise DataError(f"{where}.source: {str(path)!r} is empty")
    options = {"sep": "\t"} if path.suffix.lower() == ".tsv" else {}
    return datasets.load_dataset(builder, data_files=str(path), split=split, streaming=streaming, **options)
