import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from torch import Tensor, nn

from embedtrain.errors import ModelLoadError
from embedtrain.modules.files import WEIGHTS_FILE

TOKENIZER_FILE = "tokenizer.json"


class StaticEmbedding(nn.Module):
    """A static (context-free) embedder: the mean of one learned vector per token (`nn.EmbeddingBag`, mode mean).

    Texts are tokenized without special tokens into one flat `input_ids` tensor with `offsets`
    (where each text starts), as the reference does. Saved in the model's root folder as
    `model.safetensors` (`embedding.weight`, shape (vocab, dim)) and `tokenizer.json`, padding off.
    There is no length limit.
    """

    st_type = "sentence_transformers.models.StaticEmbedding"

    def __init__(self, tokenizer: Tokenizer, weights: Tensor | None = None, embedding_dim: int | None = None) -> None:
        super().__init__()
        if weights is not None:
            self.embedding = nn.EmbeddingBag.from_pretrained(weights, freeze=False, mode="mean")
        elif embedding_dim is not None:
            self.embedding = nn.EmbeddingBag(tokenizer.get_vocab_size(), embedding_dim, mode="mean")
        else:
            raise ValueError("StaticEmbedding needs either weights or an embedding_dim")
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())  # a copy: padding is turned off on it
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    @property
    def embedding_dimension(self) -> int:
        return self.embedding.embedding_dim

    @property
    def max_seq_length(self) -> float:
        return math.inf

    def extra_repr(self) -> str:
        return f"vocabulary={self.embedding.num_embeddings}, embedding_dimension={self.embedding_dimension}"

    def _token_ids(self, texts: list[str], prompt: str | None) -> list[list[int]]:
        if prompt:
            texts = [prompt + text for text in texts]
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def token_counts(self, texts: list[str], prompt: str | None = None) -> list[int]:
        """Tokens of each text (what `encode` orders batches by; nothing is padded here, but the order is harmless)."""
        return [len(ids) for ids in self._token_ids(texts, prompt)]

    def tokenize(self, texts: list[str], prompt: str | None = None) -> dict[str, Tensor]:
        """Texts -> `input_ids` (all tokens, flat) and `offsets` (index of each text's first token)."""
        ids = self._token_ids(texts, prompt)
        lengths = torch.tensor([0] + [len(text_ids) for text_ids in ids[:-1]], dtype=torch.long)
        return {"input_ids": torch.tensor([token for text_ids in ids for token in text_ids], dtype=torch.long),
                "offsets": torch.cumsum(lengths, dim=0)}

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        features["sentence_embedding"] = self.embedding(features["input_ids"], features["offsets"])
        return features

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"embedding.weight": self.embedding.weight.detach().contiguous()}, str(directory / WEIGHTS_FILE))
        self.tokenizer.save(str(directory / TOKENIZER_FILE))

    @classmethod
    def load(cls, directory: Path) -> "StaticEmbedding":
        """Reads the reference's layout, and a model2vec-style `embeddings` key (with optional `mapping`/`weights`)."""
        for name in (WEIGHTS_FILE, TOKENIZER_FILE):
            if not (directory / name).exists():
                raise ModelLoadError(f"{directory}: a StaticEmbedding model needs {name}, which is missing")
        weights = load_file(str(directory / WEIGHTS_FILE))
        if "embedding.weight" in weights:
            embedding = weights["embedding.weight"]
        elif "embeddings" in weights:
            embedding = _fold_model2vec(weights["embeddings"], weights.get("mapping"), weights.get("weights"))
        else:
            raise ModelLoadError(f"{directory / WEIGHTS_FILE}: no 'embedding.weight' (or model2vec 'embeddings') tensor")
        return cls(Tokenizer.from_file(str(directory / TOKENIZER_FILE)), weights=embedding)

    @classmethod
    def from_transformer(cls, transformer, embedding_dim: int | None = None) -> "StaticEmbedding":
        """A static embedder with `transformer`'s (fast) tokenizer: random vectors of `embedding_dim`, or, without
        it, a copy of the transformer's input token embeddings."""
        backend = getattr(transformer.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(f"{type(transformer.tokenizer).__name__} is not a fast (Rust) tokenizer, which "
                             f"StaticEmbedding needs")
        if embedding_dim is not None:
            return cls(backend, embedding_dim=embedding_dim)
        return cls(backend, weights=transformer.auto_model.get_input_embeddings().weight.detach().clone().float())


def _fold_model2vec(embeddings: Tensor, mapping: Tensor | None, token_weights: Tensor | None) -> Tensor:
    """model2vec stores shared vectors (`mapping`: token -> row) and per-token `weights`: fold them into one table."""
    if mapping is not None:
        embeddings = embeddings[mapping.long()]
    if token_weights is not None:
        embeddings = embeddings.float() * token_weights[:, None]
    return embeddings.contiguous()
