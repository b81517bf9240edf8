"""From a checked recipe to the objects training runs: the model (as the recipe trains it) and its losses."""

import logging

from embedtrain.errors import ModelLoadError, RecipeError
from embedtrain.losses import EmbeddingLoss, build_loss, saved_similarity
from embedtrain.models.build import build_model
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.modules import Transformer
from embedtrain.modules.length_chunks import length_chunking
from embedtrain.recipe.checks import built_model_problems, model_problems
from embedtrain.recipe.plan import DataPlan
from embedtrain.recipe.schema import Recipe

logger = logging.getLogger(__name__)


def build_training_model(recipe: Recipe, plan: DataPlan) -> SentenceEmbedder | CrossEncoder:
    """The recipe's model, checked against the data plan, set up for training and for saving."""
    model = build_model(recipe.model)
    router = getattr(model, "router", None)
    problems = model_problems(recipe, {"train": plan.train, "eval": plan.eval}, tuple(router.routes) if router else ())
    problems += built_model_problems(recipe, model)
    if problems:
        raise RecipeError("\n".join(problems))
    if recipe.training.gradient_checkpointing:
        _enable_gradient_checkpointing(model)
    chunking = length_chunking(recipe.training.length_chunking)
    if isinstance(model, CrossEncoder):  # scores pairs: no embedding similarity to save
        model.length_chunking = chunking
        return model
    if isinstance(model.input_module, Transformer):
        model.input_module.length_chunking = chunking
    if chunking is not None and isinstance(model.input_module, Transformer) \
            and model.input_module.tokenizer.padding_side == "left":
        # Transformer.forward cuts padding off the end of each text only (right padding).
        logger.info("training.length_chunking: %s pads on the left (as decoders do for last-token pooling), so its "
                    "batches run padded, without length-aware execution", recipe.model.base)
    _set_saved_similarity(recipe, model)
    return model


def _enable_gradient_checkpointing(model: SentenceEmbedder | CrossEncoder) -> None:
    """Recompute the activations of every transformer layer of the model in the backward pass (transformers'
    activation checkpointing, non-reentrant: it works with frozen weights, as LoRA's, and with GradCache's
    no-gradient first pass, and replays dropout with the RNG state of the forward pass)."""
    if isinstance(model, CrossEncoder):
        encoders = [model.model]
    else:
        encoders = [module.auto_model for module in model.modules() if isinstance(module, Transformer)]
    if not encoders:
        raise RecipeError("training.gradient_checkpointing: the model has no transformer whose activations could be "
                          "recomputed (static embeddings keep none); remove it")
    for encoder in encoders:
        if not encoder.supports_gradient_checkpointing:
            raise RecipeError(f"training.gradient_checkpointing: {type(encoder).__name__} does not support it; "
                              f"remove it")
        if hasattr(encoder, "activation_checkpointing_enable"):
            encoder.activation_checkpointing_enable()  # non-reentrant by default
        else:  # transformers before the rename (5.x), where the name above does not exist yet
            encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def _set_saved_similarity(recipe: Recipe, model: SentenceEmbedder) -> None:
    """Save the model with the similarity its losses train, as the reference does (its SparseCoSENTLoss and
    SparseCosineSimilarityLoss set cosine), unless the recipe names one: users score the model as it was trained."""
    if recipe.model.similarity_fn_name is not None:
        logger.info("the model is saved with similarity %s (model.similarity_fn_name)", model.similarity_fn_name)
        return
    trained = {name: similarity for name, params in recipe.losses.items()
               if (similarity := saved_similarity(params)) is not None}
    if len(set(trained.values())) > 1:
        raise RecipeError(f"model.similarity_fn_name: the losses train different similarities ({trained}); set "
                          f"model.similarity_fn_name to the one the saved model should score with")
    if trained:
        name, similarity = next(iter(trained.items()))
        if similarity != model.similarity_fn_name:
            logger.info("the model is saved with similarity %s, which loss %r (%s) trains, instead of %s; set "
                        "model.similarity_fn_name to choose", similarity, name, recipe.losses[name].type,
                        model.similarity_fn_name)
            model.similarity_fn_name = similarity


def build_losses(recipe: Recipe, model: SentenceEmbedder | CrossEncoder) -> dict[str, EmbeddingLoss]:
    """Every loss of the recipe, for `model`; an error (a teacher that cannot be used, ...) names its recipe key."""
    losses = {}
    for name, params in recipe.losses.items():
        try:
            losses[name] = build_loss(params, model)
        except (RecipeError, ModelLoadError) as error:
            raise type(error)(f"losses.{name}: {error}") from error
    return losses
