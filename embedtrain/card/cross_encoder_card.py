"""The cross-encoder's parts of the model card: reranker tags, the text-ranking (or text-classification) pipeline tag,
and a usage snippet with the reference's CrossEncoder (predict, and rank for a single-score model)."""

from pathlib import Path

from embedtrain.card.sections import KindSections
from embedtrain.models.cross_encoder import CrossEncoder

QUERY = "How many people live in Berlin?"
DOCUMENTS = ("Berlin had a population of 3,520,031 registered inhabitants in 2019.",
             "Berlin is well known for its museums.")


def cross_encoder_sections(model: CrossEncoder, base: str, train_sets: list[str]) -> KindSections:
    ranker = model.num_labels == 1
    task = ("a relevance score for each (query, document) pair, to rerank a retriever's candidates" if ranker else
            f"{model.num_labels} class logits for each pair of texts, to classify text pairs")
    return KindSections(
        tags=["sentence-transformers", "cross-encoder", "reranker"],
        pipeline_tag="text-ranking" if ranker else "text-classification",
        title=f"Cross-encoder fine-tuned from {Path(base).name}",
        description=f"A cross-encoder fine-tuned from `{base}` with "
                    f"[embedtrain](https://pypi.org/project/embedtrain/) on {', '.join(train_sets)}. "
                    f"It reads both texts of a pair together and computes {task}.",
        details=[["Model type", "Cross Encoder"], ["Maximum sequence length", f"{model.max_length} tokens (both texts of a pair)"],
                 ["Number of labels", str(model.num_labels)],
                 ["Activation (predict)", model.activation_name]],
        usage=_usage(model, ranker),
    )


def _usage(model: CrossEncoder, ranker: bool) -> str:
    prompt = model.resolve_prompt()
    # sentence-transformers does not read the prompts of this (its 5.x-compatible) layout: pass the prompt used in
    # training explicitly.
    option = f", prompt={prompt!r}" if prompt else ""
    lines = ["from sentence_transformers import CrossEncoder", "",
             'model = CrossEncoder("path/to/this/model")',
             f"pairs = [({QUERY!r}, {DOCUMENTS[0]!r}),", f"         ({QUERY!r}, {DOCUMENTS[1]!r})]"]
    if ranker:
        lines += [f"scores = model.predict(pairs{option})  # one score per pair, higher is more relevant",
                  f"ranking = model.rank({QUERY!r}, {list(DOCUMENTS)!r}{option})",
                  "# [{'corpus_id': 0, 'score': ...}, {'corpus_id': 1, 'score': ...}], best first"]
    else:
        lines += [f"logits = model.predict(pairs{option})  # shape ({len(DOCUMENTS)}, {model.num_labels})",
                  "labels = logits.argmax(axis=1)"]
    return "```bash\npip install -U sentence-transformers\n```\n\n```python\n" + "\n".join(lines) + "\n```"
