"""The SPLADE backbone: a masked-language model whose per-token vocabulary logits SpladePooling turns into one
sparse vector per text."""

from torch import Tensor
from transformers import AutoModelForMaskedLM

from embedtrain.modules.transformer import Transformer


class MLMTransformer(Transformer):
    """A Hugging Face `*ForMaskedLM` model and its tokenizer: texts -> `token_embeddings` holding the MLM logits
    (batch, tokens, vocabulary size), as the reference's MLMTransformer (v5.4+: Transformer with
    `transformer_task: fill-mask`) produces them.

    Saved like Transformer (root folder, legacy `sentence_bert_config.json`), under the legacy type string that
    sentence-transformers 5.x and 6.x both load.
    """

    st_type = "sentence_transformers.sparse_encoder.models.MLMTransformer"
    auto_class = AutoModelForMaskedLM
    # Vocabulary-wide logits: padding them to (batch, seq, vocab) would cost more than the encoder itself on
    # SPLADE-tiny; SpladePooling pools the packed logits directly.
    packed_outputs = True

    @property
    def embedding_dimension(self) -> int:
        """The vocabulary size: one logit per token id."""
        return self.auto_model.config.vocab_size

    def token_outputs(self, output) -> Tensor:
        return output.logits
