"""The dense embedder's parts of the model card: sentence-similarity tags and pipeline tag, and a usage snippet with
the reference's SentenceTransformer (encode_query / encode_document apply the model's query and document prompts)."""

from pathlib import Path

from embedtrain.card.sections import KindSections
from embedtrain.models.embedder import SentenceEmbedder

QUERIES = ("Which planet is known as the Red Planet?",)
DOCUMENTS = ("Mars, known for its reddish appearance, is often referred to as the Red Planet.",
             "Venus is often called Earth's twin because of its similar size and proximity.")


def dense_sections(model: SentenceEmbedder, base: str, train_sets: list[str]) -> KindSections:
    return KindSections(
        tags=["sentence-transformers", "sentence-similarity", "feature-extraction", "dense"],
        pipeline_tag="sentence-similarity",
        title=f"Sentence embedding model fine-tuned from {Path(base).name}",
        description=f"A dense sentence-embedding model fine-tuned from `{base}` with "
                    f"[embedtrain](https://pypi.org/project/embedtrain/) on {', '.join(train_sets)}. It maps text to "
                    f"a {model.embedding_dimension}-dimensional vector for semantic similarity, search, clustering "
                    f"and classification.",
        details=[["Model type", "Sentence Transformer (dense)"],
                 ["Maximum sequence length", f"{model.max_seq_length} tokens"],
                 ["Output dimensionality", f"{model.embedding_dimension} dimensions"],
                 ["Similarity function", model.similarity_fn_name]],
        usage=usage(),
    )


def usage() -> str:
    lines = ["from sentence_transformers import SentenceTransformer", "",
             'model = SentenceTransformer("path/to/this/model")',
             f"queries = {list(QUERIES)!r}", f"documents = {list(DOCUMENTS)!r}",
             "query_embeddings = model.encode_query(queries)",
             "document_embeddings = model.encode_document(documents)",
             "print(query_embeddings.shape, document_embeddings.shape)",
             "similarities = model.similarity(query_embeddings, document_embeddings)  # shape (1, 2)"]
    return "```bash\npip install -U sentence-transformers\n```\n\n```python\n" + "\n".join(lines) + "\n```"
