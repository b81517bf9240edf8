"""A tiny random cross-encoder (BertForSequenceClassification, 2 layers, hidden 32) and `ReferenceScorer`, which
scores pairs with the reference's CrossEncoder through the interface embedtrain's cross-encoder losses call.

Nothing is downloaded: the vocabulary is tiny_models' and the weights are random (seeded).
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from sentence_transformers import CrossEncoder
from torch import Tensor, nn

from helpers.tiny_models import build_vocab


def make_tiny_cross_encoder_checkpoint(directory: Path, num_labels: int = 1, seed: int = 0,
                                       dropout: float = 0.0) -> Path:
    """Write a random 2-layer BertForSequenceClassification (hidden 32, `num_labels` outputs) and its tokenizer
    as a plain Hugging Face checkpoint. Its head's weights are drawn with std 1 (not BERT's 0.02), so that
    different pairs get clearly different scores: rankings, margins and softmaxes then depend on the texts."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(build_vocab())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout, classifier_dropout=dropout, num_labels=num_labels)
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def reference_cross_encoder(checkpoint: Path) -> CrossEncoder:
    """The reference's CrossEncoder on `checkpoint`, on the CPU, in train mode (as its trainer runs a loss)."""
    return CrossEncoder(str(checkpoint), device="cpu").train()


class ReferenceScorer(nn.Module):
    """The reference's CrossEncoder as a `PairScorer`: raw logits (n, num_labels) of (text, text) pairs, tokenized
    as the reference tokenizes pairs (padding to the longest, longest-first truncation)."""

    def __init__(self, reference: CrossEncoder) -> None:
        super().__init__()
        self.reference = reference

    @property
    def num_labels(self) -> int:
        return self.reference.num_labels

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> Tensor:
        tokens = self.reference.tokenizer([list(pair) for pair in pairs], padding=True, truncation=True,
                                          return_tensors="pt")
        return self.reference.model(**tokens.to(self.reference.device)).logits
