"""Embedding quantization as the reference applies it before scoring (int8/uint8 buckets, binary signs)."""

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

Precision = Literal["float32", "int8", "uint8", "binary", "ubinary"]


def quantized_for_scoring(embeddings: torch.Tensor, precision: Precision) -> torch.Tensor:
    """L2-normalise, quantize, and return the quantized values as float32 (rows, dim) for the similarity functions.

    int8/uint8: 256 equal buckets per dimension between the minimum and maximum over `embeddings` (the rows
    calibrate themselves, as the reference does without calibration data); int8 values are shifted by -128.
    binary/ubinary: 1 where the value is positive, else 0 (the reference unpacks its packed bits to exactly this).
    float32: the normalised embeddings.
    """
    normalized = F.normalize(embeddings, p=2, dim=-1).numpy().astype(np.float32)
    if precision == "float32":
        return torch.from_numpy(normalized)
    if precision in ("binary", "ubinary"):
        return torch.from_numpy((normalized > 0).astype(np.float32))
    starts = normalized.min(axis=0)
    steps = (normalized.max(axis=0) - starts) / 255
    steps = np.where(steps == 0, 1, steps)
    buckets = np.clip(np.floor((normalized - starts) / steps), 0, 255)
    return torch.from_numpy((buckets - 128 if precision == "int8" else buckets).astype(np.float32))
