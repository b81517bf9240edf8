"""Build the model a recipe's `model:` section describes."""

from embedtrain.errors import RecipeError
from embedtrain.models.adapters import add_recipe_lora
from embedtrain.models.build_sparse import build_sparse_model
from embedtrain.models.config import BF16_TRAINING_HINT, ModelConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.cross_encoder_build import build_cross_encoder
from embedtrain.models.cross_encoder_io import cross_encoder_settings
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.io import load_model, resolve_model_path
from embedtrain.models.sparse_embedder import SparseEmbedder
from embedtrain.modules import Dense, Normalize, Pooling, StaticEmbedding, Transformer


def build_model(config: ModelConfig) -> SentenceEmbedder | CrossEncoder:
    """Load `config.base` and apply the recipe's settings on top of it.

    A plain Hugging Face checkpoint gets Pooling (mean by default) [+ Dense]; a sentence-transformers
    model keeps its own pooling and dense layers, so setting them for one is an error. `kind: sparse` builds a
    sparse model instead (build_sparse), `kind: cross_encoder` a cross-encoder (cross_encoder_build).
    """
    if config.kind == "cross_encoder":
        return build_cross_encoder(config)
    path = resolve_model_path(config.base, config.revision)
    if cross_encoder_settings(path) is not None:
        raise RecipeError(f"model.kind: {config.base} is a cross-encoder (it scores text pairs, it embeds no text); "
                          f"set `kind: cross_encoder` to train it")
    if config.kind == "sparse":
        return build_sparse_model(config)
    is_sentence_model = (path / "modules.json").exists()
    if is_sentence_model and (config.pooling is not None or config.dense is not None):
        raise RecipeError(f"model.pooling / model.dense: {config.base} is already a sentence-transformers model with its "
                          f"own pooling; remove these keys (they apply to plain Hugging Face checkpoints)")
    model = load_model(path, trust_remote_code=config.trust_remote_code, attn_implementation=config.attn_implementation,
                       max_seq_length=config.max_seq_length, dtype=config.weights_dtype)
    if isinstance(model, SparseEmbedder):
        raise RecipeError(f"model.kind: {config.base} is a sparse model (SparseEncoder); set `kind: sparse`")
    modules = list(model)
    if config.static is not None:
        if config.pooling is not None or config.dense is not None:
            raise RecipeError("model.pooling / model.dense: a static model (model.static) has no token embeddings to pool; "
                              "remove these keys")
        if not isinstance(modules[0], Transformer):
            raise RecipeError(f"model.static: {config.base} has no transformer whose tokenizer a static model could use")
        modules = [StaticEmbedding.from_transformer(modules[0], config.static.embedding_dim)]
    elif not is_sentence_model:
        modes = (config.pooling,) if isinstance(config.pooling, str) else tuple(config.pooling or ("mean",))
        modules = [modules[0], Pooling(modules[0].embedding_dimension, modes)]
        if config.dense is not None:
            modules.append(Dense(modules[1].embedding_dimension, config.dense.out_features, config.dense.bias,
                                 config.dense.activation))
    if config.include_prompt is not None:
        for module in modules:
            if isinstance(module, Pooling):
                module.include_prompt = config.include_prompt
    if config.normalize is not None:
        modules = [module for module in modules if not isinstance(module, Normalize)]
        if config.normalize:
            modules.append(Normalize())
    embedder = SentenceEmbedder(
        modules,
        prompts=model.prompts | config.prompts,
        default_prompt_name=config.default_prompt_name or model.default_prompt_name,
        similarity_fn_name=config.similarity_fn_name or model.similarity_fn_name,
        truncate_dim=config.truncate_dim or model.truncate_dim,
    )
    if embedder.truncate_dim is not None and embedder.truncate_dim > embedder.embedding_dimension:
        raise RecipeError(f"model.truncate_dim: {embedder.truncate_dim} exceeds the model's embedding dimension "
                          f"{embedder.embedding_dimension}; choose a smaller value (e.g. one of the Matryoshka dims)")
    if config.lora is not None:
        add_recipe_lora(embedder, config)
    if config.dtype != "float32" and getattr(embedder[0], "adapter", None) is None:
        raise RecipeError(f"model.dtype: {config.dtype} is for the frozen base of a LoRA run, and {config.base} "
                          f"trains without an adapter (no model.lora, and the base is no adapter model); "
                          f"{BF16_TRAINING_HINT}")
    return embedder
