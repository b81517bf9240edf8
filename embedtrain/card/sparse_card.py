"""The sparse encoder's parts of the model card: the reference's sparse tags (sparse-encoder, sparse, and splade /
inference-free / asymmetric / csr by the modules the model has), the feature-extraction pipeline tag, and a usage
snippet with the reference's SparseEncoder (encode_query / encode_document route and prompt each side)."""

from pathlib import Path

from embedtrain.card.dense_card import DOCUMENTS, QUERIES
from embedtrain.card.sections import KindSections
from embedtrain.models.sparse_embedder import SparseEmbedder
from embedtrain.modules import Router, SparseAutoEncoder, SparseStaticEmbedding, SpladePooling


def sparse_model_type(model: SparseEmbedder) -> list[str]:
    """The kinds the model is, in the reference's words and order: Asymmetric (a router), Inference-free (a static
    query side), SPLADE, CSR."""
    present = {type(module) for module in model.modules()}
    kinds = [("Asymmetric", Router), ("Inference-free", SparseStaticEmbedding), ("SPLADE", SpladePooling),
             ("CSR", SparseAutoEncoder)]
    return [name for name, module_type in kinds if module_type in present]


def sparse_sections(model: SparseEmbedder, base: str, train_sets: list[str]) -> KindSections:
    kinds = sparse_model_type(model)
    model_type = " ".join([*kinds, "Sparse Encoder"])
    csr = "CSR" in kinds
    space = (f"a {model.embedding_dimension}-dimensional sparse vector (latent dimensions of a sparse autoencoder)"
             if csr else f"a {model.embedding_dimension}-dimensional sparse vector (one weight per vocabulary token)")
    active = f", at most {model.max_active_dims} of them non-zero" if model.max_active_dims else ""
    details = [["Model type", model_type], ["Maximum sequence length", f"{model.max_seq_length} tokens"],
               ["Output dimensionality", f"{model.embedding_dimension} dimensions"],
               ["Similarity function", model.similarity_fn_name]]
    if model.max_active_dims:
        details.append(["Maximum active dimensions", str(model.max_active_dims)])
    return KindSections(
        tags=["sentence-transformers", "sparse-encoder", "sparse", *(kind.lower() for kind in kinds)],
        pipeline_tag="feature-extraction",
        title=f"{model_type} fine-tuned from {Path(base).name}",
        description=f"{'An' if model_type[0] in 'AEIOU' else 'A'} {model_type} model fine-tuned from `{base}` with "
                    f"[embedtrain](https://pypi.org/project/embedtrain/) on {', '.join(train_sets)}. It maps text to "
                    f"{space}{active}, for semantic search and sparse retrieval.",
        details=details,
        usage=usage(decodes=not csr),
    )


def usage(decodes: bool) -> str:
    """The snippet; `decodes`: the dimensions are vocabulary tokens (SPLADE), so decode shows the top ones."""
    lines = ["from sentence_transformers import SparseEncoder", "",
             'model = SparseEncoder("path/to/this/model")',
             f"queries = {list(QUERIES)!r}", f"documents = {list(DOCUMENTS)!r}",
             "query_embeddings = model.encode_query(queries)",
             "document_embeddings = model.encode_document(documents)",
             "print(query_embeddings.shape, document_embeddings.shape)",
             "similarities = model.similarity(query_embeddings, document_embeddings)  # shape (1, 2)"]
    if decodes:
        lines.append("top_tokens = model.decode(query_embeddings, top_k=10)  # the query's 10 heaviest tokens")
    return "```bash\npip install -U sentence-transformers\n```\n\n```python\n" + "\n".join(lines) + "\n```"
