"""Tiny sparse models built with sentence-transformers, for comparing embedtrain's sparse losses with the reference's.

Both libraries' losses get the same model object, so a comparison tests the loss maths alone.
"""

from pathlib import Path

import torch
from sentence_transformers.sentence_transformer.modules import Pooling
from sentence_transformers.sparse_encoder import SparseEncoder
from sentence_transformers.sparse_encoder.modules import (
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)

from helpers.tiny_models import build_vocab


def make_tiny_mlm_checkpoint(directory: Path, seed: int = 0, architecture: str = "bert") -> Path:
    """A random 2-layer BertForMaskedLM (hidden 32, no dropout), or DistilBertForMaskedLM with `architecture`
    "distilbert", and its tokenizer, as a plain Hugging Face checkpoint."""
    from transformers import (
        BertConfig,
        BertForMaskedLM,
        BertTokenizer,
        DistilBertConfig,
        DistilBertForMaskedLM,
        DistilBertTokenizer,
    )

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(build_vocab())}
    if architecture == "distilbert":
        model_class, tokenizer_class = DistilBertForMaskedLM, DistilBertTokenizer
        config = DistilBertConfig(vocab_size=len(vocab), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                  max_position_embeddings=64, dropout=0.0, attention_dropout=0.0)
    else:
        model_class, tokenizer_class = BertForMaskedLM, BertTokenizer
        config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    model_class(config).save_pretrained(directory)
    tokenizer_class(vocab=vocab, do_lower_case=True, model_max_length=64).save_pretrained(directory)
    return directory


def splade_modules(mlm_checkpoint: Path) -> list:
    return [Transformer(str(mlm_checkpoint), transformer_task="fill-mask"), SpladePooling("max")]


def splade_model(mlm_checkpoint: Path) -> SparseEncoder:
    """SPLADE: MLM logits, log(1 + relu), max over tokens."""
    return SparseEncoder(modules=splade_modules(mlm_checkpoint), device="cpu").train()


def inference_free_model(mlm_checkpoint: Path) -> SparseEncoder:
    """Inference-free SPLADE: a Router with a SparseStaticEmbedding query route (random weights) and a SPLADE
    document route."""
    document = splade_modules(mlm_checkpoint)
    torch.manual_seed(1)
    weights = torch.rand(document[0].tokenizer.vocab_size) + 0.5
    query = SparseStaticEmbedding(document[0].tokenizer, weight=weights)
    return SparseEncoder(modules=[Router.for_query_document([query], document)], device="cpu").train()


def csr_model(dense_checkpoint: Path) -> SparseEncoder:
    """CSR: mean-pooled tiny BERT, then a sparse autoencoder (32 -> 64 latents, k 4, k_aux 8), with some latents
    marked dead (not active for more than `dead_threshold` steps) so that the auxiliary term is not zero."""
    torch.manual_seed(2)
    autoencoder = SparseAutoEncoder(input_dim=32, hidden_dim=64, k=4, k_aux=8)
    with torch.no_grad():
        autoencoder.stats_last_nonzero[::2] = autoencoder.dead_threshold + 5
    modules = [Transformer(str(dense_checkpoint)), Pooling(32, "mean"), autoencoder]
    return SparseEncoder(modules=modules, device="cpu").train()
