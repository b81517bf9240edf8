"""A pair scorer over the reference's CrossEncoder (embedtrain's scoring takes anything with
`predict(pairs, batch_size)`), and a tiny random cross-encoder to drive it."""

from pathlib import Path

import torch


class ReferenceCrossEncoderScorer:
    """The reference's CrossEncoder behind the `predict(pairs, batch_size) -> Tensor` protocol."""

    def __init__(self, cross_encoder) -> None:
        self.cross_encoder = cross_encoder
        self.pairs_scored = 0

    def predict(self, pairs: list[tuple[str, str]], batch_size: int) -> torch.Tensor:
        self.pairs_scored += len(pairs)
        scores = self.cross_encoder.predict(pairs, batch_size=batch_size, convert_to_tensor=True,
                                            show_progress_bar=False)
        return torch.as_tensor(scores).float().cpu()


def make_tiny_cross_encoder(directory: Path):
    """A tiny random BERT with a one-label classification head, saved and loaded as the reference's CrossEncoder.
    Its weights are drawn wider than BERT's default (std 0.5, not 0.02), so that its scores differ between pairs
    (from about 0.03 to 0.94) instead of all being 0.502."""
    from sentence_transformers import CrossEncoder
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from helpers.tiny_models import build_vocab

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={token: index for index, token in enumerate(build_vocab())}, do_lower_case=True,
                              model_max_length=64)
    config = BertConfig(vocab_size=len(build_vocab()), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, num_labels=1, initializer_range=0.5)
    torch.manual_seed(3)
    BertForSequenceClassification(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return CrossEncoder(str(directory), device="cpu")
