"""A tiny random cross-encoder, read by the reference's CrossEncoder, and an adapter that gives embedtrain's
cross-encoder evaluators the two things they use (`predict(pairs, batch_size)` -> float32 CPU tensor, and
`num_labels`) from that same reference model, so both libraries' evaluators score with one model.
"""

from collections.abc import Sequence
from pathlib import Path

import torch

from helpers.tiny_models import build_vocab


def make_tiny_cross_encoder(directory: Path, num_labels: int = 1, seed: int = 0) -> Path:
    """Write a random 2-layer BertForSequenceClassification (hidden 32) and its tokenizer as a plain Hugging Face
    checkpoint. Weights are drawn wider than BERT's default (std 0.3, not 0.02), so that the scores of different
    pairs differ well beyond float rounding: metrics then never hinge on near-ties."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(build_vocab())}
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, initializer_range=0.3, num_labels=num_labels)
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(directory)
    BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=128).save_pretrained(directory)
    return directory


class ReferencePredictor:
    """The reference CrossEncoder seen through the interface embedtrain's cross-encoder evaluators call."""

    def __init__(self, reference) -> None:
        self.reference = reference
        self.num_labels = reference.num_labels
        self.calls: list[int] = []  # pairs per predict call

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> torch.Tensor:
        self.calls.append(len(pairs))
        scores = self.reference.predict([list(pair) for pair in pairs], batch_size=batch_size, convert_to_tensor=True,
                                        show_progress_bar=False)
        return scores.float().cpu()
