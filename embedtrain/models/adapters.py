"""LoRA adapters on a dense model: added for training (`model.lora`), merged into full weights in a saved model.

The adapter itself (injecting, saving, loading its weights) is `embedtrain.modules.lora`; this module applies the
recipe's settings to a built model and rewrites a saved adapter model as a plain one.
"""

import logging
from pathlib import Path

from torch import nn

from embedtrain.errors import RecipeError
from embedtrain.models.config import ModelConfig
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.io import load_model, save_model
from embedtrain.modules import Transformer
from embedtrain.modules.lora import ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, LoraSettings, add_lora, merge_adapter

logger = logging.getLogger(__name__)


def add_recipe_lora(model: SentenceEmbedder, config: ModelConfig) -> None:
    """Give the model's transformer the adapter `config.lora` describes (in place), freezing its own weights.

    The saved adapter names its base model as the recipe does (`model.base`): a hub id stays a hub id even when the
    mirror supplied a local copy, and a local path is written as given (loading the adapter then needs that path).
    """
    settings = config.lora
    transformer = model[0]
    if not isinstance(transformer, Transformer):
        raise RecipeError(f"model.lora: {config.base} has no transformer to adapt ({type(transformer).__name__})")
    if transformer.adapter is not None:
        raise RecipeError(f"model.lora: {config.base} already carries a LoRA adapter ({ADAPTER_CONFIG_FILE}); remove "
                          f"model.lora to continue training that adapter")
    target_modules = tuple(settings.target_modules) if isinstance(settings.target_modules, list) else settings.target_modules
    try:
        transformer.adapter = add_lora(transformer.auto_model, LoraSettings(
            settings.r, settings.alpha, settings.dropout, target_modules, config.base))
    except ValueError as error:  # peft: a target module the model lacks, or one that is not a supported layer
        linear = sorted({name.rpartition(".")[2] for name, module in transformer.auto_model.named_modules()
                         if isinstance(module, nn.Linear)})
        raise RecipeError(f"model.lora.target_modules: {error} The linear layers of {config.base}: "
                          f"{', '.join(linear)}") from error
    trainable = sum(parameter.numel() for parameter in transformer.parameters() if parameter.requires_grad)
    logger.info("LoRA adapter on %s (layers %s): %d trainable parameters of the transformer's %d", config.base,
                transformer.adapter.target_modules, trainable, sum(p.numel() for p in transformer.parameters()))


def merge_saved_adapter(directory: Path, *, trust_remote_code: bool = False) -> None:
    """Rewrite the saved model in `directory` with its adapter merged into full weights (`model.lora.merge`): the
    same embeddings up to float rounding, loadable without peft. The model is read back from `directory` (its base
    from where the adapter names it), so both the trained model and a copied best checkpoint are merged alike."""
    model = load_model(directory, trust_remote_code=trust_remote_code)
    transformer = model[0]
    transformer.auto_model = merge_adapter(transformer.auto_model)
    transformer.adapter = None
    for name in (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE):
        (directory / name).unlink()
    save_model(model, directory)
