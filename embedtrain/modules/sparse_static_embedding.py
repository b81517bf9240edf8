"""The query side of inference-free SPLADE: one learnable weight per vocabulary id, no neural network."""

import json
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from embedtrain.errors import ModelLoadError
from embedtrain.modules.files import WEIGHTS_FILE, load_weights, read_json, save_weights, write_json


class SparseStaticEmbedding(nn.Module):
    """`sentence_embedding[b, v] = weight[v]` if token id v occurs in text b, else 0.

    Texts are tokenized without special tokens and truncated to the tokenizer's `model_max_length`, as the
    reference does. The weights are typically IDF values (`from_idf_json`), ones by default; `frozen` stops them
    from training. Saved as `config.json` ({"frozen": ...}), `model.safetensors` (key `weight`, shape (vocab,))
    and the tokenizer files.
    """

    st_type = "sentence_transformers.sparse_encoder.models.SparseStaticEmbedding"

    def __init__(self, tokenizer: PreTrainedTokenizerBase, weight: Tensor | None = None, frozen: bool = False) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        if weight is None:
            weight = torch.ones(len(tokenizer.get_vocab()))
        self.weight = nn.Parameter(weight.float(), requires_grad=not frozen)
        self.frozen = frozen

    @property
    def embedding_dimension(self) -> int:
        return self.weight.size(0)

    @property
    def max_seq_length(self) -> int:
        return self.tokenizer.model_max_length

    def extra_repr(self) -> str:
        return f"vocabulary={self.embedding_dimension}, frozen={self.frozen}"

    def _texts(self, texts: list[str], prompt: str | None) -> list[str]:
        return [prompt + text for text in texts] if prompt else texts

    def tokenize(self, texts: list[str], prompt: str | None = None) -> dict[str, Tensor]:
        return dict(self.tokenizer(self._texts(texts, prompt), padding=True, truncation=True, return_tensors="pt",
                                   add_special_tokens=False))

    def token_counts(self, texts: list[str], prompt: str | None = None) -> list[int]:
        ids = self.tokenizer(self._texts(texts, prompt), truncation=True, add_special_tokens=False,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return [len(row) for row in ids]

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        input_ids = features["input_ids"]
        present = torch.zeros(input_ids.size(0), self.embedding_dimension, dtype=self.weight.dtype,
                              device=input_ids.device)
        # Padding positions scatter their mask value 0; a real token sets its id's column to 1.
        present.scatter_(1, input_ids, features["attention_mask"].to(present.dtype))
        features["sentence_embedding"] = present * self.weight
        return features

    @classmethod
    def from_idf_json(cls, path: Path, tokenizer: PreTrainedTokenizerBase, frozen: bool = False) -> "SparseStaticEmbedding":
        """Weights from a JSON object {token: weight} (e.g. IDF values); tokens not listed get weight 0."""
        table = json.loads(Path(path).read_text(encoding="utf-8"))
        ids = tokenizer.convert_tokens_to_ids(list(table))
        weight = torch.zeros(len(tokenizer.get_vocab()))
        weight[torch.tensor(ids, dtype=torch.long)] = torch.tensor(list(table.values()), dtype=torch.float32)
        return cls(tokenizer, weight, frozen)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(directory)
        save_weights(self, directory)
        write_json(directory / "config.json", {"frozen": self.frozen})

    @classmethod
    def load(cls, directory: Path) -> "SparseStaticEmbedding":
        if not (directory / WEIGHTS_FILE).exists():
            raise ModelLoadError(f"{directory}: a SparseStaticEmbedding needs {WEIGHTS_FILE}, which is missing")
        config = read_json(directory / "config.json") if (directory / "config.json").exists() else {}
        module = cls(AutoTokenizer.from_pretrained(directory), frozen=config.get("frozen", False))
        load_weights(module, directory)
        module.weight.requires_grad_(not module.frozen)
        return module
