"""The dense embedder's parts of the model card: sentence-similarity tags and pipeline tag, the LoRA adapter it was
trained with (if any), and a usage snippet with the reference's SentenceTransformer (encode_query / encode_document
apply the model's query and document prompts)."""

from pathlib import Path

from embedtrain.card.sections import KindSections
from embedtrain.models.config import LoraConfig
from embedtrain.models.embedder import SentenceEmbedder

QUERIES = ("Which planet is known as the Red Planet?",)
DOCUMENTS = ("Mars, known for its reddish appearance, is often referred to as the Red Planet.",
             "Venus is often called Earth's twin because of its similar size and proximity.")


def dense_sections(model: SentenceEmbedder, base: str, train_sets: list[str],
                   lora: LoraConfig | None = None) -> KindSections:
    """`lora`: the recipe's `model.lora` (None also when the base model's own adapter was trained further)."""
    adapter = getattr(model.input_module, "adapter", None)
    trained_with = " with a LoRA adapter" if adapter is not None else ""
    return KindSections(
        tags=["sentence-transformers", "sentence-similarity", "feature-extraction", "dense",
              *(["lora"] if adapter is not None else [])],
        pipeline_tag="sentence-similarity",
        title=f"Sentence embedding model fine-tuned from {Path(base).name}",
        description=f"A dense sentence-embedding model fine-tuned from `{base}`{trained_with} with "
                    f"[embedtrain](https://pypi.org/project/embedtrain/) on {', '.join(train_sets)}. It maps text to "
                    f"a {model.embedding_dimension}-dimensional vector for semantic similarity, search, clustering "
                    f"and classification.",
        details=[["Model type", "Sentence Transformer (dense)"],
                 ["Maximum sequence length", f"{model.max_seq_length} tokens"],
                 ["Output dimensionality", f"{model.embedding_dimension} dimensions"],
                 ["Similarity function", model.similarity_fn_name],
                 *([["Fine-tuning", adapter_description(adapter, merged=lora is not None and lora.merge)]]
                   if adapter is not None else [])],
        usage=usage(),
    )


def adapter_description(adapter, merged: bool) -> str:
    """What the card says of a LoRA adapter (peft's LoraConfig, its target modules resolved by peft) and of how the
    model is saved: with the adapter merged into full weights, or as the adapter alone."""
    targets = adapter.target_modules
    targets = targets if isinstance(targets, str) else ", ".join(f"`{name}`" for name in sorted(targets))
    saved = ("merged into the base model's weights: a plain model, loadable without peft" if merged else
             "as the adapter alone (`adapter_config.json`, `adapter_model.safetensors`): loading it needs peft and "
             "the base model")
    return (f"LoRA adapter (r {adapter.r}, alpha {adapter.lora_alpha:g}, dropout {adapter.lora_dropout:g}) on "
            f"{targets}, the base model's own weights frozen; saved {saved}")


def usage() -> str:
    lines = ["from sentence_transformers import SentenceTransformer", "",
             'model = SentenceTransformer("path/to/this/model")',
             f"queries = {list(QUERIES)!r}", f"documents = {list(DOCUMENTS)!r}",
             "query_embeddings = model.encode_query(queries)",
             "document_embeddings = model.encode_document(documents)",
             "print(query_embeddings.shape, document_embeddings.shape)",
             "similarities = model.similarity(query_embeddings, document_embeddings)  # shape (1, 2)"]
    return "```bash\npip install -U sentence-transformers\n```\n\n```python\n" + "\n".join(lines) + "\n```"
