"""The SPLADE backbone: a masked-language model whose per-token vocabulary logits SpladePooling turns into one
sparse vector per text."""

import torch
from torch import Tensor, nn
from transformers import AutoModelForMaskedLM

from embedtrain.modules.transformer import Transformer


class MLMTransformer(Transformer):
    """A Hugging Face `*ForMaskedLM` model and its tokenizer, as the reference's MLMTransformer (v5.4+: Transformer
    with `transformer_task: fill-mask`).

    When the MLM head ends in a linear decoder (BERT, DistilBERT, RoBERTa, ...), the decoder is not run here: the
    module hands on the real tokens' decoder inputs (`decoder_inputs`, with `decoder_input_rows`, the text of
    each token) and the decoder's `decoder_weight` / `decoder_bias`, and SpladePooling applies decoder,
    activation and pooling fused (modules/splade_head.py), never holding the (tokens x vocabulary) logits.
    Any other head falls back to handing on the logits as `token_embeddings` (or packed, as
    `packed_token_embeddings`).

    Saved like Transformer (root folder, legacy `sentence_bert_config.json`), under the legacy type string that
    sentence-transformers 5.x and 6.x both load.
    """

    st_type = "sentence_transformers.sparse_encoder.models.MLMTransformer"
    auto_class = AutoModelForMaskedLM
    # Vocabulary-wide logits (the fallback): padding them to (batch, seq, vocab) would cost more than the encoder
    # itself on SPLADE-tiny; SpladePooling pools the packed logits directly.
    packed_outputs = True

    @property
    def embedding_dimension(self) -> int:
        """The vocabulary size: one logit per token id."""
        return self.auto_model.config.vocab_size

    @property
    def decoder(self) -> nn.Linear | None:
        """The MLM head's final linear layer (hidden -> vocabulary), if it has one."""
        decoder = self.auto_model.get_output_embeddings()
        return decoder if isinstance(decoder, nn.Linear) else None

    def token_outputs(self, output) -> Tensor:
        return output.logits

    def _token_outputs(self, inputs: dict[str, Tensor], **options) -> Tensor:
        """The decoder's inputs, captured by a hook that hands the decoder zero tokens instead (so the model runs
        unchanged, with its own head transform, and the logits are never computed); the logits without a decoder."""
        decoder = self.decoder
        if decoder is None:
            return super()._token_outputs(inputs, **options)
        captured: list[Tensor] = []

        def skip_decoder(module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
            captured.append(args[0])
            return (args[0][..., :0, :], *args[1:])

        hook = decoder.register_forward_pre_hook(skip_decoder)
        try:
            self.auto_model(**inputs, **options, return_dict=True)
        finally:
            hook.remove()
        return captured[0]

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        features = super().forward(features)
        decoder = self.decoder
        if decoder is None:
            return features
        if "packed_token_embeddings" in features:
            hidden, rows = features.pop("packed_token_embeddings"), features.pop("packed_token_rows")
        else:  # not packed (no padding, or packing unavailable): keep the real tokens only
            padded = features.pop("token_embeddings")
            mask = features["attention_mask"].bool() if "attention_mask" in features else torch.ones(
                padded.shape[:2], dtype=torch.bool, device=padded.device)
            hidden = padded[mask]
            rows = torch.arange(mask.size(0), device=mask.device).unsqueeze(1).expand_as(mask)[mask]
        features.update(decoder_inputs=hidden, decoder_input_rows=rows, decoder_weight=decoder.weight,
                        decoder_bias=decoder.bias)
        return features
