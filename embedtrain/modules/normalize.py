from pathlib import Path

import torch.nn.functional as F
from torch import Tensor, nn


class Normalize(nn.Module):
    """L2-normalises `sentence_embedding`. Saved as an empty folder, as the reference's legacy layout."""

    st_type = "sentence_transformers.models.Normalize"

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        features["sentence_embedding"] = F.normalize(features["sentence_embedding"], p=2, dim=1)
        return features

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)

    @classmethod
    def load(cls, directory: Path) -> "Normalize":
        return cls()
