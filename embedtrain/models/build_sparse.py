"""Build the sparse model a recipe's `model:` section (kind: sparse) describes.

The architecture defaults as the reference's SparseEncoder does: a sparse base model keeps its own; a
masked-LM checkpoint becomes SPLADE; any other checkpoint becomes CSR (mean pooling + sparse autoencoder with
hidden 4 x dim, k 256, k_aux 512), and a dense sentence-transformers model gets the autoencoder on top of its
own modules (hidden 4 x dim, k dim/4, k_aux dim/2).
"""

from pathlib import Path

from transformers import AutoConfig

from embedtrain.errors import RecipeError
from embedtrain.models.config import Architecture, ModelConfig, SparseConfig
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.io import load_model, resolve_model_path
from embedtrain.models.load_errors import check_transformer_config, reading_model
from embedtrain.models.sparse_embedder import SparseEmbedder
from embedtrain.modules import (
    MLMTransformer,
    Pooling,
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)


def architecture_of(model: SparseEmbedder) -> Architecture:
    if model.router is not None:
        return "inference_free_splade"
    return "csr" if isinstance(model[-1], SparseAutoEncoder) else "splade"


def is_masked_lm(path: Path, trust_remote_code: bool) -> bool:
    check_transformer_config(path, trust_remote_code)
    with reading_model(path):
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    return any(name.endswith("ForMaskedLM") for name in getattr(config, "architectures", None) or [])


def build_sparse_model(config: ModelConfig) -> SparseEmbedder:
    path = resolve_model_path(config.base, config.revision)
    options = {"trust_remote_code": config.trust_remote_code, "attn_implementation": config.attn_implementation,
               "max_seq_length": config.max_seq_length, "dtype": config.weights_dtype}
    sparse = config.sparse or SparseConfig()
    if (path / "modules.json").exists():
        base = load_model(path, **options)
        if isinstance(base, SparseEmbedder):
            modules = _existing_sparse_modules(base, config)
        else:
            modules = _csr_on_dense_model(base, config, sparse)
    else:
        masked_lm = is_masked_lm(path, config.trust_remote_code)
        architecture = config.architecture or ("splade" if masked_lm else "csr")
        _check_options_apply(architecture, sparse)
        if architecture != "csr" and not masked_lm:
            raise RecipeError(f"model.architecture: {architecture} needs a masked-LM checkpoint (a *ForMaskedLM "
                              f"model, whose head scores every vocabulary id); {config.base} is not one. Use "
                              f"architecture: csr, or a masked-LM base such as a BERT checkpoint")
        if architecture == "csr":
            transformer = _load_checkpoint(Transformer, path, options)
            modules = [transformer, Pooling(transformer.embedding_dimension, ("mean",)),
                       _autoencoder(transformer.embedding_dimension, sparse, k=256, k_aux=512)]
        else:
            modules = _splade_modules(_load_checkpoint(MLMTransformer, path, options), sparse, architecture)
        base = None
    return SparseEmbedder(
        modules,
        prompts=(base.prompts if base else {}) | config.prompts,
        default_prompt_name=config.default_prompt_name or (base.default_prompt_name if base else None),
        similarity_fn_name=config.similarity_fn_name or (base.similarity_fn_name if isinstance(base, SparseEmbedder) else "dot"),
        max_active_dims=config.max_active_dims or getattr(base, "max_active_dims", None),
    )


def _load_checkpoint(transformer_class: type[Transformer], path: Path, options: dict) -> Transformer:
    """A plain Hugging Face checkpoint (its config already checked by is_masked_lm) as `transformer_class`."""
    with reading_model(path):
        return transformer_class.load(path, **options)


def _check_options_apply(architecture: Architecture, sparse: SparseConfig) -> None:
    """Options of another architecture are a mistake worth reporting, not something to ignore."""
    foreign = {"splade": ("query_encoder", "autoencoder"), "inference_free_splade": ("autoencoder",),
               "csr": ("pooling_strategy", "activation_function", "query_encoder")}[architecture]
    given = sorted(set(foreign) & sparse.model_fields_set)
    if given:
        raise RecipeError(f"model.sparse.{given[0]}: not an option of architecture {architecture}; remove it")


def _existing_sparse_modules(base: SparseEmbedder, config: ModelConfig) -> list:
    existing = architecture_of(base)
    if config.architecture is not None and config.architecture != existing:
        raise RecipeError(f"model.architecture: {config.base} is already a sparse model of architecture {existing}; "
                          f"remove the key or set it to {existing}")
    if config.sparse is not None:
        raise RecipeError(f"model.sparse: {config.base} is already a sparse model with its own modules; remove the "
                          f"key (it configures a new sparse model)")
    return list(base)


def _csr_on_dense_model(base: SentenceEmbedder, config: ModelConfig, sparse: SparseConfig) -> list:
    if config.architecture not in (None, "csr"):
        raise RecipeError(f"model.architecture: {config.base} is a dense sentence-transformers model, which becomes "
                          f"sparse only as csr (a sparse autoencoder on its embeddings); set architecture: csr or use "
                          f"a masked-LM checkpoint")
    _check_options_apply("csr", sparse)
    dim = base.embedding_dimension
    return [*base, _autoencoder(dim, sparse, k=dim // 4, k_aux=dim // 2)]


def _autoencoder(dim: int, sparse: SparseConfig, *, k: int, k_aux: int) -> SparseAutoEncoder:
    options = sparse.autoencoder
    hidden_dim, k, k_aux = options.hidden_dim or 4 * dim, options.k or k, options.k_aux or k_aux
    for key, value in (("k", k), ("k_aux", k_aux)):
        if value > hidden_dim:
            raise RecipeError(f"model.sparse.autoencoder.{key}: {value} active latents out of {hidden_dim} "
                              f"(hidden_dim, {hidden_dim // dim} x the {dim}-d embedding); set "
                              f"model.sparse.autoencoder.{key} to at most {hidden_dim} or raise hidden_dim")
    return SparseAutoEncoder(dim, hidden_dim=hidden_dim, k=k, k_aux=k_aux, normalize=options.normalize,
                             dead_threshold=options.dead_threshold)


def _splade_modules(transformer: MLMTransformer, sparse: SparseConfig, architecture: Architecture) -> list:
    pooling = SpladePooling(sparse.pooling_strategy, sparse.activation_function, transformer.embedding_dimension)
    if architecture == "splade":
        return [transformer, pooling]
    query = sparse.query_encoder
    if query.idf is not None:
        idf = Path(query.idf).expanduser()
        if not idf.is_file():
            raise RecipeError(f"model.sparse.query_encoder.idf: {str(idf)!r} is not a file; give a JSON file "
                              f"{{token: weight}}")
        static = SparseStaticEmbedding.from_idf_json(idf, transformer.tokenizer, query.frozen)
    else:
        static = SparseStaticEmbedding(transformer.tokenizer, frozen=query.frozen)
    return [Router({"query": [static], "document": [transformer, pooling]})]
