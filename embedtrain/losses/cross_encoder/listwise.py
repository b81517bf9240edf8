"""What the listwise losses share: their contract, and a batch of (query, [documents]) scored into padded matrices."""

from dataclasses import dataclass

import torch
from pydantic import Field
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from embedtrain.data.contract import ColumnContract
from embedtrain.errors import DataError
from embedtrain.losses.cross_encoder.scoring import Activation, activate, activation_field, pair_scores
from embedtrain.losses.registry import CrossEncoderInputs, LossParams, PairScorer

LISTWISE_CONTRACT = ColumnContract(inputs=("query", "documents"), label="list_scores", list_input="documents",
                                   scored_as_pairs=True)

PADDED_SCORE = -1e16
"""The score of a padding slot: it sorts after every document and gets no probability mass."""


class ListwiseOptions(LossParams):
    activation_fn: Activation = activation_field("identity")
    mini_batch_size: int | None = Field(None, ge=0, description="pairs scored per forward pass (bounds activation "
                                                                "memory, not a GradCache); null: as many as the batch "
                                                                "has queries; 0: all pairs at once")


@dataclass(frozen=True)
class ScoredLists:
    """A batch's documents as (batch, longest list) matrices; slots past a row's documents are padding."""

    scores: Tensor  # float32 activated scores, PADDED_SCORE in padding
    labels: Tensor  # float32, `label_padding` in padding
    mask: Tensor  # bool, True at a document


def score_lists(model: PairScorer, inputs: CrossEncoderInputs, labels: list[list[float]], options: ListwiseOptions,
                label_padding: float) -> ScoredLists:
    """Score every (query, document) pair of the batch, `options.mini_batch_size` pairs per forward pass (the
    reference's chunking), and lay the scores and labels out per query."""
    queries, documents = inputs
    lengths = [len(texts) for texts in documents]
    label_lengths = [len(row) for row in labels]
    if lengths != label_lengths:
        row = next(row for row, (docs, scores) in enumerate(zip(lengths, label_lengths)) if docs != scores)
        raise DataError(f"a row of the batch has {lengths[row]} documents but {label_lengths[row]} scores; every row "
                        f"needs one score per document")
    pairs = [(query, text) for query, texts in zip(queries, documents) for text in texts]
    chunk = len(queries) if options.mini_batch_size is None else options.mini_batch_size
    scores = activate(options.activation_fn, pair_scores(model, pairs, chunk).float())
    device = scores.device
    matrix = pad_sequence(scores.split(lengths), batch_first=True, padding_value=PADDED_SCORE)
    targets = pad_sequence([torch.as_tensor(row, dtype=torch.float32) for row in labels], batch_first=True,
                           padding_value=label_padding).to(device)
    mask = torch.arange(matrix.size(1), device=device)[None, :] < torch.tensor(lengths, device=device)[:, None]
    return ScoredLists(matrix, targets, mask)
