from typing import Any, Literal

import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor, nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import RecipeError
from embedtrain.losses.registry import Embedder, EmbeddingLoss, LossParams, register_loss
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.io import resolve_model_path
from embedtrain.models.load_errors import reading_model
from embedtrain.modules import Transformer


class DenoisingAutoEncoderParams(LossParams):
    type: Literal["DenoisingAutoEncoderLoss"]
    decoder_name_or_path: str | None = Field(
        None, description="the decoder (a causal LM); by default the model's own transformer, weights tied to it")
    tie_encoder_decoder: bool = Field(True, description="share the encoder's weights with the decoder (not the cross-attention)")

    @model_validator(mode="after")
    def _decoder_known(self) -> "DenoisingAutoEncoderParams":
        if not self.tie_encoder_decoder and self.decoder_name_or_path is None:
            raise ValueError("decoder_name_or_path is required when tie_encoder_decoder is false")
        if self.tie_encoder_decoder and self.decoder_name_or_path is not None:
            raise ValueError("decoder_name_or_path is the model itself when tie_encoder_decoder is true; remove it")
        return self


def tie_weights(encoder: nn.Module, decoder: nn.Module) -> None:
    """Make each encoder parameter the decoder parameter of the same name (shared storage; the decoder's values win).

    Parameters only the decoder has (cross-attention, LM head) stay its own.
    """
    encoder_modules = dict(encoder.named_modules())
    for name, parameter in decoder.named_parameters():
        module_name, _, attribute = name.rpartition(".")
        module = encoder_modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            setattr(module, attribute, parameter)


def load_decoder(params: DenoisingAutoEncoderParams, transformer: Transformer) -> tuple[nn.Module, Any]:
    """The decoder (a causal LM with cross-attention, as wide as `transformer`) and its tokenizer (padding set)."""
    # A hub id goes through resolve_model_path, so that the mirror (EMBEDTRAIN_MIRROR) maps it like any other model.
    name = (str(resolve_model_path(params.decoder_name_or_path)) if params.decoder_name_or_path
            else transformer.auto_model.config._name_or_path)
    with reading_model(name):  # a decoder folder that is missing or broken: ModelLoadError, not transformers' own
        config = AutoConfig.from_pretrained(name)
    config.is_decoder, config.add_cross_attention = True, True
    if config.hidden_size != transformer.embedding_dimension:
        raise RecipeError(f"{params.type}: the decoder {name!r} is {config.hidden_size} wide but the model's "
                          f"transformer is {transformer.embedding_dimension}; they must match")
    with reading_model(name):  # missing or damaged weights (OSError, SafetensorError); ValueError is said below
        try:
            decoder = AutoModelForCausalLM.from_pretrained(name, config=config)
        except ValueError as error:
            raise RecipeError(f"{params.type}: {name!r} cannot be loaded as a decoder (a causal LM head): "
                              f"{error}") from error
    with reading_model(name):
        tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        decoder.config.pad_token_id = decoder.config.eos_token_id
    if params.tie_encoder_decoder:
        tie_weights(transformer.auto_model, decoder.base_model)
    return decoder, tokenizer


@register_loss
class DenoisingAutoEncoderLoss(EmbeddingLoss):
    """TSDAE: a decoder must reconstruct the original text from the sentence embedding of its damaged version alone.

    The decoder (a causal LM with cross-attention) attends only to the embedding of the damaged text;
    `L = mean over the original's tokens t of CE(decoder(original[<t], embedding), original[t])`,
    padding ignored (Wang et al., 2021). The decoder is trained with the model but not saved.
    """

    Params = DenoisingAutoEncoderParams
    contract = ColumnContract(inputs=("damaged", "original"))
    not_truncatable = "its decoder attends to full-size embeddings"

    def __init__(self, params: DenoisingAutoEncoderParams, model: SentenceEmbedder) -> None:
        super().__init__(params, model)
        transformer = model.input_module
        if not isinstance(transformer, Transformer):
            raise RecipeError(f"{params.type} needs a transformer model; a static model has no layers to decode from")
        self.decoder, self.decoder_tokenizer = load_decoder(params, transformer)
        self.encoder_tokenizer = transformer.tokenizer
        self.must_retokenize = not isinstance(self.encoder_tokenizer, type(self.decoder_tokenizer))

    def forward(self, model: Embedder, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        damaged, original = features
        if self.must_retokenize:
            texts = self.encoder_tokenizer.batch_decode(original["input_ids"], skip_special_tokens=True,
                                                        clean_up_tokenization_spaces=True)
            original = self.decoder_tokenizer(texts, padding=True, truncation="longest_first", return_tensors="pt")
            original = {key: value.to(damaged["input_ids"].device) for key, value in original.items()}
        embeddings = model(damaged)["sentence_embedding"]
        target = original["input_ids"]
        logits = self.decoder(input_ids=target[:, :-1], encoder_hidden_states=embeddings[:, None],
                              encoder_attention_mask=damaged["attention_mask"][:, :1], use_cache=False).logits
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target[:, 1:].reshape(-1),
                               ignore_index=self.decoder_tokenizer.pad_token_id)
