"""Retrieval data: queries, a corpus and relevance judgements, from a BEIR-layout folder or the NanoBEIR hub sets.

BEIR layout: `corpus.jsonl` ({"_id", "title", "text"} per line), `queries.jsonl` ({"_id", "text"}) and
`qrels/{split}.tsv` (query-id, corpus-id, score with a header line; score > 0 is relevant).
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from embedtrain.data.mirror import dataset_copy
from embedtrain.errors import DataError

NANOBEIR_DATASETS = {
    "climatefever": "ClimateFEVER", "dbpedia": "DBPedia", "fever": "FEVER", "fiqa2018": "FiQA2018",
    "hotpotqa": "HotpotQA", "msmarco": "MSMARCO", "nfcorpus": "NFCorpus", "nq": "NQ",
    "quoraretrieval": "QuoraRetrieval", "scidocs": "SCIDOCS", "arguana": "ArguAna", "scifact": "SciFact",
    "touche2020": "Touche2020",
}
"""The 13 NanoBEIR subsets: name -> human-readable name (its split is `Nano{human}`)."""

NANOBEIR_HUB_ID = "sentence-transformers/NanoBEIR-en"


@dataclass(frozen=True)
class RetrievalData:
    """queries {query id: text}, corpus {corpus id: text}, relevant {query id: set of corpus ids}."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]


def is_beir_folder(path: Path) -> bool:
    return (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file() and (path / "qrels").is_dir()


def beir_folders(path: Path, where: str) -> list[Path]:
    """`path` itself if it is a BEIR folder, else its BEIR sub-folders (sorted by name)."""
    if not path.is_dir():
        raise DataError(f"{where}.source: {str(path)!r} is not a folder (expected a BEIR folder with corpus.jsonl, "
                        f"queries.jsonl and qrels/, or a folder of such folders)")
    if is_beir_folder(path):
        return [path]
    folders = sorted(child for child in path.iterdir() if is_beir_folder(child))
    if not folders:
        raise DataError(f"{where}.source: {str(path)!r} holds no BEIR folder (one with corpus.jsonl, queries.jsonl "
                        f"and qrels/{{split}}.tsv), neither itself nor a sub-folder")
    return folders


def load_beir_folder(path: Path, split: str, where: str) -> RetrievalData:
    """Read a BEIR folder; the corpus text is `title text` when a title is present (the BEIR convention)."""
    qrels = path / "qrels" / f"{split}.tsv"
    if not qrels.is_file():
        available = sorted(p.stem for p in (path / "qrels").glob("*.tsv"))
        raise DataError(f"{where}: {str(qrels)!r} does not exist; set `split:` to one of {available}")
    corpus = {}
    for row in _read_jsonl(path / "corpus.jsonl", ("_id", "text"), where):
        title = (row.get("title") or "").strip()
        corpus[str(row["_id"])] = f"{title} {row['text']}" if title else row["text"]
    queries = {str(row["_id"]): row["text"] for row in _read_jsonl(path / "queries.jsonl", ("_id", "text"), where)}
    relevant: dict[str, set[str]] = {}
    with qrels.open(encoding="utf-8", newline="") as file:
        reader = csv.reader(file, delimiter="\t")
        header = next(reader, None)
        if header is None or header[:2] != ["query-id", "corpus-id"]:
            raise DataError(f"{where}: {str(qrels)!r} must start with the header 'query-id<TAB>corpus-id<TAB>score'")
        for line, row in enumerate(reader, start=2):
            if len(row) < 2:
                raise DataError(f"{where}: {str(qrels)!r} line {line} has {len(row)} fields; expected query-id, "
                                f"corpus-id and score separated by tabs")
            if len(row) < 3 or float(row[2]) > 0:
                relevant.setdefault(row[0], set()).add(row[1])
    return RetrievalData(queries, corpus, relevant)


def _only_qrels(path: Path, where: str) -> str:
    """The split of a BEIR folder that holds a single qrels file (a mirror's copy of one split of a hub dataset)."""
    splits = sorted(file.stem for file in (path / "qrels").glob("*.tsv"))
    if len(splits) != 1:
        raise DataError(f"{where}: {str(path)!r}, the mirror's copy of one split, must hold one qrels file; it holds "
                        f"{splits or 'none'}")
    return splits[0]


def _read_jsonl(path: Path, required: tuple[str, ...], where: str) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: {str(path)!r} line {line_number} is not JSON: {error}") from error
            missing = [key for key in required if key not in row]
            if missing:
                raise DataError(f"{where}: {str(path)!r} line {line_number} lacks {missing} (BEIR rows have "
                                f"{', '.join(required)})")
            rows.append(row)
    return rows


def load_beir_hub(dataset_id: str, split: str, where: str) -> RetrievalData:
    """A hub dataset with subsets corpus (_id, text), queries (_id, text) and qrels (query-id, corpus-id, which may
    be a list), as NanoBEIR-en is (its splits are `Nano{Human}`); empty texts are dropped.

    A local copy the mirror (EMBEDTRAIN_MIRROR) names is a BEIR folder: the whole dataset (read with `split`), or
    one split (then the folder's only qrels file is that split's)."""
    import datasets

    copy = dataset_copy(dataset_id, None, split, where)
    if copy is not None:
        if not is_beir_folder(copy.path):
            raise DataError(f"{where}: {str(copy.path)!r}, the mirror's copy of {dataset_id!r}, is not a BEIR folder "
                            f"(corpus.jsonl, queries.jsonl and qrels/)")
        return load_beir_folder(copy.path, _only_qrels(copy.path, where) if copy.single_split else split, where)

    tables = {}
    for subset, columns in (("corpus", ("_id", "text")), ("queries", ("_id", "text")), ("qrels", ("query-id", "corpus-id"))):
        try:
            table = datasets.load_dataset(dataset_id, subset, split=split)
        except Exception as error:  # datasets raises many unrelated types; all mean "cannot load this"
            raise DataError(f"{where}: cannot load subset {subset!r} split {split!r} of {dataset_id!r}: "
                            f"{type(error).__name__}: {error}") from error
        missing = [column for column in columns if column not in table.column_names]
        if missing:
            raise DataError(f"{where}: subset {subset!r} split {split!r} of {dataset_id!r} lacks columns {missing}")
        tables[subset] = table
    corpus = {str(i): text for i, text in zip(tables["corpus"]["_id"], tables["corpus"]["text"]) if text}
    queries = {str(i): text for i, text in zip(tables["queries"]["_id"], tables["queries"]["text"]) if text}
    relevant: dict[str, set[str]] = {}
    for query_id, corpus_ids in zip(tables["qrels"]["query-id"], tables["qrels"]["corpus-id"]):
        ids = corpus_ids if isinstance(corpus_ids, list) else [corpus_ids]
        relevant.setdefault(str(query_id), set()).update(str(i) for i in ids)
    return RetrievalData(queries, corpus, relevant)
