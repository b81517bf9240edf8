"""SPLADE pooling: per-token MLM logits -> one non-negative vocabulary-sized vector per text."""

from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from embedtrain.errors import ModelLoadError
from embedtrain.modules.files import read_json, write_json
from embedtrain.modules.splade_head import splade_pool

SpladeStrategy = Literal["max", "sum"]
SpladeActivation = Literal["relu", "log1p_relu"]


class SpladePooling(nn.Module):
    """`sentence_embedding[b, v] = pool_t log1p(relu(logits[b, t, v] * mask[b, t]))` over the tokens t.

    From an MLMTransformer with a linear decoder, applies that decoder fused with the activation and the pooling
    (`decoder_inputs`, see splade_head.py); otherwise pools the logits it is given: padded `token_embeddings`, or
    the real tokens only when the transformer hands them on packed.
    `pooling_strategy` max (SPLADE v2 and later) or sum (the original SPLADE); `activation_function`
    log1p_relu applies a second log1p (the OpenSearch models). Padding tokens contribute 0, which never wins a
    max of non-negative values. Saved as `config.json` only (no weights), in the legacy layout.
    """

    st_type = "sentence_transformers.sparse_encoder.models.SpladePooling"

    def __init__(self, pooling_strategy: SpladeStrategy = "max", activation_function: SpladeActivation = "relu",
                 word_embedding_dimension: int | None = None) -> None:
        super().__init__()
        if pooling_strategy not in ("max", "sum"):
            raise ValueError(f"pooling_strategy must be 'max' or 'sum', not {pooling_strategy!r}")
        if activation_function not in ("relu", "log1p_relu"):
            raise ValueError(f"activation_function must be 'relu' or 'log1p_relu', not {activation_function!r}")
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.word_embedding_dimension = word_embedding_dimension

    @property
    def embedding_dimension(self) -> int | None:
        """The vocabulary size if saved (it may be null: the MLM transformer before this module then decides)."""
        return self.word_embedding_dimension

    def extra_repr(self) -> str:
        return f"pooling_strategy={self.pooling_strategy}, activation_function={self.activation_function}"

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        if "decoder_inputs" in features:
            features["sentence_embedding"] = splade_pool(
                features["decoder_inputs"], features["decoder_weight"], features["decoder_bias"],
                features["decoder_input_rows"], features["attention_mask"].size(0), self.pooling_strategy,
                self.activation_function)
            return features
        if "packed_token_embeddings" in features:  # real tokens only, each with its text's row (MLMTransformer)
            weights = self._weights(features["packed_token_embeddings"])
            rows = features["packed_token_rows"]
            # Starting from zeros is the padded version's padding tokens, whose weight is 0.
            pooled = weights.new_zeros(features["attention_mask"].size(0), weights.size(1))
            features["sentence_embedding"] = (
                pooled.scatter_reduce(0, rows.unsqueeze(1).expand_as(weights), weights, "amax")
                if self.pooling_strategy == "max" else pooled.index_add(0, rows, weights))
            return features
        logits = features["token_embeddings"]
        weights = self._weights(logits * features["attention_mask"].unsqueeze(-1).to(logits.dtype))
        features["sentence_embedding"] = weights.amax(dim=1) if self.pooling_strategy == "max" else weights.sum(dim=1)
        return features

    def _weights(self, logits: Tensor) -> Tensor:
        weights = torch.log1p(torch.relu(logits))
        return torch.log1p(weights) if self.activation_function == "log1p_relu" else weights

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "config.json", {"pooling_strategy": self.pooling_strategy,
                                               "activation_function": self.activation_function,
                                               "word_embedding_dimension": self.word_embedding_dimension})

    @classmethod
    def load(cls, directory: Path) -> "SpladePooling":
        """Reads the legacy (`word_embedding_dimension`) and the v5.4+ (`embedding_dimension`) configs."""
        config = read_json(directory / "config.json")
        try:
            return cls(config.get("pooling_strategy", "max"), config.get("activation_function", "relu"),
                       config.get("word_embedding_dimension", config.get("embedding_dimension")))
        except ValueError as error:
            raise ModelLoadError(f"{directory / 'config.json'}: {error}") from error
