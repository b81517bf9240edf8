"""Build the cross-encoder a recipe's `model:` section (kind: cross_encoder) describes.

`base` may be a saved cross-encoder (it keeps its head, activation and prompts unless the recipe sets them), a
Hugging Face sequence classifier (its head), or any other checkpoint or sentence-transformers embedder, whose
encoder gets a new classification head of `cross_encoder.num_labels` outputs (1 by default), as the reference's
CrossEncoder builds one.
"""

from embedtrain.errors import RecipeError
from embedtrain.models.config import CrossEncoderConfig, ModelConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.cross_encoder_io import load_cross_encoder, trained_num_labels
from embedtrain.models.io import resolve_model_path


def cross_encoder_num_labels(config: ModelConfig) -> int:
    """The number of labels of the cross-encoder `config` builds, from the config files alone (before any weights load,
    for the data checks): `cross_encoder.num_labels`, else the base model's trained head's, else 1."""
    options = config.cross_encoder or CrossEncoderConfig()
    path = resolve_model_path(config.base, config.revision)
    return options.num_labels or trained_num_labels(path, config.trust_remote_code) or 1


def build_cross_encoder(config: ModelConfig) -> CrossEncoder:
    path = resolve_model_path(config.base, config.revision)
    options = config.cross_encoder or CrossEncoderConfig()
    trained = trained_num_labels(path, config.trust_remote_code)
    if options.num_labels is not None and trained is not None and options.num_labels != trained:
        raise RecipeError(f"model.cross_encoder.num_labels: {config.base} has a trained classification head with "
                          f"{trained} label(s), not {options.num_labels}; remove num_labels to keep that head, or start "
                          f"from a checkpoint without one (an encoder) to train a new head")
    return load_cross_encoder(path, num_labels=options.num_labels, activation=options.activation,
                              max_length=config.max_seq_length, prompts=config.prompts,
                              default_prompt_name=config.default_prompt_name,
                              trust_remote_code=config.trust_remote_code,
                              attn_implementation=config.attn_implementation, dtype=config.weights_dtype)
