"""Hard-negative mining and teacher scores: the library behind `embedtrain mine` and `embedtrain score`.

It lives in the evaluation layer because mining is a retrieval run whose result is data instead of metrics: it
embeds texts as evaluators do (`embed_rows`, packed encoding) and searches a corpus with the retrieval evaluation's
exact top-k (`top_k_search`). Being below `recipe`, it can also serve a recipe's mining step.

- options.py: the reference's rules and their defaults (`MiningOptions`)
- pairs.py: reading (query, positive) pairs and a corpus, deduplicating them (`MiningInput`)
- search.py: embedding, and the nearest corpus texts of each query (exact, or faiss)
- scoring.py: teacher scores of pairs (`PairScorer`: a cross-encoder, or a `BiEncoderScorer`)
- selection.py: the rules applied to the candidates; formats.py: the four output formats
- summary.py: counts, skipped queries and why, score distributions; mine.py: the whole run (`mine_negatives`)
- output.py: parquet/jsonl with a provenance sidecar; progress.py: progress reporting without printing
"""
