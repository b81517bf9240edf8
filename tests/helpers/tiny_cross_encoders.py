"""Tiny random sequence classifiers (2 layers, hidden 32, the tiny BERT's vocabulary), built locally, for the
cross-encoder tests; and pairs of very different lengths, where padding would dominate.

Weights are drawn with standard deviation 0.3 (instead of BERT's 0.02, which leaves a tiny random encoder's [CLS]
state nearly the same for every input), so that the scores of different pairs differ by far more than float
rounding: an equality of scores then means something.
"""

from pathlib import Path

import torch

from helpers.data import PAIRS
from helpers.tiny_models import build_vocab

PAIRS_OF_TEXTS = [(first, second) for first, second, _ in PAIRS]
UNEVEN_PAIRS = [
    ("what", "a man is playing the guitar in the park with a dog and a child on a sunny day"),
    ("a woman is eating food in the kitchen at the table with two people", "food"),
    ("dog", "cat"),
    ("where is the red car", "the red car is on the street"),
    ("a", "b c d e f g h i j k l m n o p q r s t u v w x y z"),
]


def make_tiny_classifier(directory: Path, num_labels: int = 1, seed: int = 0, architecture: str = "bert",
                         dropout: float = 0.0) -> Path:
    """Write a random `BertForSequenceClassification` (or `ElectraForSequenceClassification`: an encoder that does not
    run packed) and its tokenizer as a plain Hugging Face checkpoint: a sequence classifier with a trained-looking
    head of `num_labels` outputs."""
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertTokenizer,
        ElectraConfig,
        ElectraForSequenceClassification,
    )

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(build_vocab())}
    sizes = {"vocab_size": len(vocab), "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 64, "max_position_embeddings": 64, "hidden_dropout_prob": dropout,
             "attention_probs_dropout_prob": dropout, "num_labels": num_labels, "initializer_range": 0.3}
    torch.manual_seed(seed)
    if architecture == "bert":
        model = BertForSequenceClassification(BertConfig(**sizes))
    else:
        model = ElectraForSequenceClassification(ElectraConfig(embedding_size=32, **sizes))
    model.save_pretrained(directory)
    BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=64).save_pretrained(directory)
    return directory
