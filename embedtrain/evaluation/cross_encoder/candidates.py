"""Candidate lists to rerank: per query, corpus ids ranked best first by a first stage.

They come from a hub dataset's `bm25` subset (NanoBEIR's: rows {query-id, corpus-ids}), from a jsonl file of the
same rows, or from a first-stage embedding model (dense or sparse) that ranks the whole corpus.
"""

from collections.abc import Iterable
from pathlib import Path

from embedtrain.errors import DataError
from embedtrain.evaluation.beir import RetrievalData, load_hub_subset, read_jsonl
from embedtrain.evaluation.cross_encoder.reranking import RerankingSample
from embedtrain.evaluation.registry import embed_rows
from embedtrain.evaluation.retrieval import top_k_search
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.similarity import MATRIX

Candidates = dict[str, list[str]]
"""query id -> corpus ids, best first."""

CANDIDATE_COLUMNS = ("query-id", "corpus-ids")
CORPUS_CHUNK_SIZE = 50_000
"""Corpus rows scored at once by the first stage (memory: queries x chunk scores)."""


def hub_candidates(dataset_id: str, split: str, data: RetrievalData, where: str) -> Candidates:
    """The `bm25` subset's rankings (split `split`) of a hub dataset laid out as NanoBEIR-en."""
    table = load_hub_subset(dataset_id, "bm25", split, CANDIDATE_COLUMNS, where)
    return _checked(zip(table["query-id"], table["corpus-ids"]), data,
                    f"{where}: subset 'bm25' split {split!r} of {dataset_id!r}")


def file_candidates(path: Path, data: RetrievalData, where: str) -> Candidates:
    """The rankings of a jsonl file, one {"query-id": ..., "corpus-ids": [...]} row per query."""
    if not path.is_file():
        raise DataError(f"{where}.candidates: {str(path)!r} is not a file (expected jsonl rows "
                        f'{{"query-id": ..., "corpus-ids": [best first, ...]}})')
    rows = read_jsonl(path, CANDIDATE_COLUMNS, where)
    return _checked(((row["query-id"], row["corpus-ids"]) for row in rows), data, f"{where}: {str(path)!r}")


def _checked(rows: Iterable[tuple[object, object]], data: RetrievalData, what: str) -> Candidates:
    """{query id: corpus ids} of (query-id, corpus-ids) rows; DataError naming the row (from 0) and the fix for a
    ranking that is not a list, an unknown id, or a query ranked twice."""
    candidates: Candidates = {}
    for row, (query_id, corpus_ids) in enumerate(rows):
        if not isinstance(corpus_ids, list):
            raise DataError(f"{what}, row {row}: corpus-ids must be a list of corpus ids, best first; got "
                            f"{corpus_ids!r}")
        query_id, ids = str(query_id), [str(corpus_id) for corpus_id in corpus_ids]
        if query_id not in data.queries:
            raise DataError(f"{what}, row {row}: query-id {query_id!r} is not one of the queries; remove the row or "
                            f"add the query")
        unknown = [corpus_id for corpus_id in ids if corpus_id not in data.corpus]
        if unknown:
            raise DataError(f"{what}, row {row}: corpus-ids {unknown[:5]} are not in the corpus; remove them or add "
                            f"the documents")
        if query_id in candidates:
            raise DataError(f"{what}, row {row}: query-id {query_id!r} is ranked twice; keep one row per query")
        candidates[query_id] = ids
    return candidates


def first_stage_candidates(model: SentenceEmbedder, data: RetrievalData, k: int, batch_size: int) -> Candidates:
    """The model's `k` best corpus ids for each query with a relevant document, by its own similarity function, as
    the IR evaluator ranks them: its query and document prompts and routes, ties broken by corpus id."""
    query_ids = [query_id for query_id in data.queries if data.relevant.get(query_id)]
    corpus_ids = sorted(data.corpus)
    queries = embed_rows(model, [data.queries[query_id] for query_id in query_ids], batch_size, None, "query",
                         task="query")
    corpus = embed_rows(model, [data.corpus[corpus_id] for corpus_id in corpus_ids], batch_size, None, "document",
                        task="document")
    _, rows = top_k_search(queries, corpus, MATRIX[model.similarity_fn_name], k, CORPUS_CHUNK_SIZE)
    return {query_id: [corpus_ids[row] for row in ranked] for query_id, ranked in zip(query_ids, rows.tolist())}


def reranking_samples(data: RetrievalData, candidates: Candidates, rerank_k: int, where: str) -> list[RerankingSample]:
    """One sample per ranked query with relevant documents (others have nothing to find): its text, the texts of
    its relevant documents, and those of its first `rerank_k` candidates."""
    samples = []
    for query_id, corpus_ids in candidates.items():
        relevant = data.relevant.get(query_id)
        if not relevant:
            continue
        missing = sorted(relevant - data.corpus.keys())
        if missing:
            raise DataError(f"{where}: the qrels of query {query_id!r} name corpus ids {missing[:5]} that the corpus "
                            f"does not hold; remove them from the qrels or add the documents")
        samples.append(RerankingSample(data.queries[query_id], tuple(data.corpus[i] for i in sorted(relevant)),
                                       tuple(data.corpus[i] for i in corpus_ids[:rerank_k])))
    if not samples:
        raise DataError(f"{where}: no ranked query has a relevant document in the qrels; check that the candidates' "
                        f"query ids are those of the qrels")
    return samples
