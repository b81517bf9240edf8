from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from embedtrain.errors import ModelLoadError
from embedtrain.modules.files import read_json, write_json

PoolingMode = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
POOLING_MODES: tuple[str, ...] = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
"""In the order the reference concatenates them when several are enabled."""

LEGACY_KEYS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}


class Pooling(nn.Module):
    """Turns `token_embeddings` into one `sentence_embedding` per text; several modes are concatenated.

    With `include_prompt=False`, the prompt's tokens (`prompt_length`, counted from the first real
    token, so left padding works) do not take part in pooling.
    """

    st_type = "sentence_transformers.models.Pooling"

    def __init__(self, word_embedding_dimension: int, modes: tuple[str, ...] = ("mean",), include_prompt: bool = True) -> None:
        super().__init__()
        unknown = [mode for mode in modes if mode not in POOLING_MODES]
        if unknown or not modes:
            raise ValueError(f"unknown pooling mode(s) {unknown}; choose from {POOLING_MODES}")
        self.word_embedding_dimension = word_embedding_dimension
        self.modes = tuple(mode for mode in POOLING_MODES if mode in modes)
        self.include_prompt = include_prompt

    @property
    def embedding_dimension(self) -> int:
        return self.word_embedding_dimension * len(self.modes)

    def extra_repr(self) -> str:
        return f"word_embedding_dimension={self.word_embedding_dimension}, modes={self.modes}, include_prompt={self.include_prompt}"

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        tokens = features["token_embeddings"]
        full_mask = features["attention_mask"]
        first_token = full_mask.to(torch.int32).argmax(dim=1)  # > 0 only with left padding
        mask = full_mask
        if not self.include_prompt and "prompt_length" in features:
            positions = torch.arange(mask.size(1), device=mask.device).unsqueeze(0)
            prompt_end = first_token + features["prompt_length"].to(mask.device)
            mask = mask.masked_fill(positions < prompt_end.unsqueeze(1), 0)
        outputs = [self._pool(mode, tokens, mask, first_token) for mode in self.modes]
        features["sentence_embedding"] = torch.cat(outputs, dim=-1)
        return features

    @staticmethod
    def _pool(mode: str, tokens: Tensor, mask: Tensor, first_token: Tensor) -> Tensor:
        accumulate = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        if mode == "cls":
            index = mask.to(torch.int32).argmax(dim=1)
            return tokens[torch.arange(tokens.size(0), device=tokens.device), index]
        if mode == "max":
            return tokens.masked_fill(mask.unsqueeze(-1) == 0, float("-inf")).max(dim=1).values
        if mode in ("mean", "mean_sqrt_len_tokens"):
            weights = mask.unsqueeze(-1).to(tokens.dtype)
            summed = (tokens * weights).sum(dim=1, dtype=accumulate)
            counts = torch.clamp(weights.sum(dim=1, dtype=accumulate), min=1e-9)
            denominator = counts if mode == "mean" else torch.sqrt(counts)
            return (summed / denominator).to(tokens.dtype)
        if mode == "weightedmean":
            # Position weights 1..T counted from the first real token.
            positions = torch.arange(1, tokens.size(1) + 1, device=tokens.device, dtype=accumulate).view(1, -1, 1)
            weights = mask.unsqueeze(-1).to(accumulate) * (positions - first_token.view(-1, 1, 1))
            summed = (tokens * weights).sum(dim=1)
            return (summed / torch.clamp(weights.sum(dim=1), min=1e-9)).to(tokens.dtype)
        # lasttoken: the last attended position (handles left and right padding).
        length = tokens.size(1)
        values, flipped_index = mask.flip(1).max(1)
        index = torch.where(values == 0, 0, length - flipped_index - 1)
        return tokens[torch.arange(tokens.size(0), device=tokens.device), index] * values.unsqueeze(-1).to(tokens.dtype)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        config = {"word_embedding_dimension": self.word_embedding_dimension}
        config |= {key: mode in self.modes for mode, key in LEGACY_KEYS.items()}
        config["include_prompt"] = self.include_prompt
        write_json(directory / "config.json", config)

    @classmethod
    def load(cls, directory: Path) -> "Pooling":
        """Reads the legacy (boolean flags) and the v5.4+ (`pooling_mode`) layouts."""
        config = read_json(directory / "config.json")
        dimension = config.get("word_embedding_dimension", config.get("embedding_dimension"))
        if "pooling_mode" in config:
            mode = config["pooling_mode"]
            modes = (mode,) if isinstance(mode, str) else tuple(mode)
            if list(modes) != [m for m in POOLING_MODES if m in modes]:
                # The legacy layout that embedtrain writes can only express the canonical order.
                raise ModelLoadError(f"{directory / 'config.json'}: pooling modes {modes} are not in the order "
                                     f"{POOLING_MODES}, which embedtrain does not support")
        else:
            # As the reference: no enabled flag means mean pooling.
            modes = tuple(mode for mode, key in LEGACY_KEYS.items() if config.get(key)) or ("mean",)
        if dimension is None:
            raise ModelLoadError(f"{directory / 'config.json'}: not a pooling config (no embedding dimension)")
        try:
            return cls(dimension, modes, config.get("include_prompt", True))
        except ValueError as error:
            raise ModelLoadError(f"{directory / 'config.json'}: {error}") from error
