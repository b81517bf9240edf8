from typing import Literal, Protocol

import torch
from pydantic import Field, model_validator
from torch import Tensor

from embedtrain.data.contract import ColumnContract
from embedtrain.losses.distributed import gather_with_grad
from embedtrain.losses.registry import EmbeddingLoss, LossParams, register_loss
from embedtrain.similarity import MATRIX, SimilarityName

Direction = Literal["query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc"]
PartitionMode = Literal["joint", "per_direction"]
HardnessMode = Literal["in_batch_negatives", "hard_negatives", "all_negatives"]


class RankingOptions(LossParams):
    """The options shared by MultipleNegativesRankingLoss and its cached (GradCache) variant."""

    scale: float = Field(20.0, gt=0, description="inverse temperature applied to the similarities")
    similarity: SimilarityName = "cosine"
    directions: tuple[Direction, ...] = Field(
        ("query_to_doc",), min_length=1,
        description="interaction terms: query_to_doc (required), query_to_query, doc_to_query, doc_to_doc")
    partition_mode: PartitionMode = Field("joint", description="one softmax over all directions, or one per direction averaged")
    hardness_mode: HardnessMode | None = Field(None, description="which negatives get the hardness penalty (None: off)")
    hardness_strength: float = Field(0.0, ge=0, description="alpha of the penalty alpha * stopgrad(similarity)")

    @model_validator(mode="after")
    def _valid_directions(self) -> "RankingOptions":
        if "query_to_doc" not in self.directions:
            raise ValueError("directions must include 'query_to_doc' (it holds the positive pair)")
        if len(set(self.directions)) != len(self.directions):
            raise ValueError(f"directions {list(self.directions)} repeat a direction")
        if self.partition_mode == "per_direction" and {"query_to_query", "doc_to_doc"} & set(self.directions):
            raise ValueError("partition_mode 'per_direction' needs every direction to contain the positive pair; "
                             "query_to_query and doc_to_doc do not: use partition_mode 'joint'")
        return self


class RankingSettings(Protocol):
    """What `ranking_row_losses` reads: RankingOptions, or the parameters of a variant that fixes some of them."""

    scale: float
    similarity: SimilarityName
    directions: tuple[Direction, ...]
    partition_mode: PartitionMode
    hardness_mode: HardnessMode | None
    hardness_strength: float


GATHER_FIELD = Field(False, description="score against the candidates of every process (several GPUs or processes)")


class MultipleNegativesRankingParams(RankingOptions):
    type: Literal["MultipleNegativesRankingLoss"]
    gather_across_devices: bool = GATHER_FIELD


def ranking_row_losses(queries: Tensor, docs: list[Tensor], rows: Tensor, options: RankingSettings) -> Tensor:
    """Per-query InfoNCE losses of the queries at positions `rows` of `queries`.

    queries: (Q, d) every query in play (all processes' when gathering); docs: one (Q, d) tensor
    per candidate column, positives first then each hard-negative column, so the candidate pool
    is `cat(docs)` and query i's positive is candidate i. For each row i:
        loss_i = -(s*sim(q_i, p_i) - log Z_i)
    where log Z_i is the logsumexp over the selected directions' logits (joint), or the mean of
    one logsumexp per direction (per_direction). Directions: query_to_doc s*sim(q_i, every doc);
    query_to_query s*sim(q_i, q_j), j != i; doc_to_query s*sim(p_i, q_j); doc_to_doc
    s*sim(p_i, d), d not a document of query i. Hardness adds alpha*stopgrad(sim) (not scaled)
    to the query_to_doc logits of the chosen negatives.
    """
    similarity = MATRIX[options.similarity]
    num_queries, num_columns = queries.size(0), len(docs)
    all_docs = torch.cat(docs, dim=0)
    local = torch.arange(len(rows), device=queries.device)
    own_columns = torch.zeros(len(rows), num_queries, dtype=torch.bool, device=queries.device)
    own_columns[local, rows] = True
    own_docs = own_columns.repeat(1, num_columns)  # query i's positive and its hard negatives

    logits = {"query_to_doc": similarity(queries[rows], all_docs)}
    if "query_to_query" in options.directions:
        logits["query_to_query"] = similarity(queries[rows], queries).masked_fill(own_columns, -torch.inf)
    if "doc_to_query" in options.directions:
        logits["doc_to_query"] = similarity(queries, docs[0][rows]).T
    if "doc_to_doc" in options.directions:
        logits["doc_to_doc"] = similarity(all_docs, docs[0][rows]).T.masked_fill(own_docs, -torch.inf)

    penalty = None
    if options.hardness_mode is not None and options.hardness_strength > 0:
        penalized = {"in_batch_negatives": ~own_docs, "all_negatives": ~own_docs, "hard_negatives": own_docs}[options.hardness_mode].clone()
        if options.hardness_mode == "all_negatives":
            penalized[:, num_queries:] = True  # own hard negatives too; only the positive is spared
        else:
            penalized[:, :num_queries] &= options.hardness_mode == "in_batch_negatives"  # hard_negatives: not the positives
        penalty = options.hardness_strength * logits["query_to_doc"].detach() * penalized

    logits = {name: matrix * options.scale for name, matrix in logits.items()}
    if penalty is not None:
        logits["query_to_doc"] = logits["query_to_doc"] + penalty
    positives = logits["query_to_doc"][local, rows]
    if options.partition_mode == "joint":
        log_z = torch.logsumexp(torch.cat(list(logits.values()), dim=1), dim=1)
    else:
        log_z = torch.stack([torch.logsumexp(matrix, dim=1) for matrix in logits.values()]).mean(dim=0)
    return log_z - positives


def gather_columns(embeddings: list[Tensor], gather: bool) -> tuple[Tensor, list[Tensor], Tensor]:
    """(queries, docs, rows of this process's queries), gathered from every process if `gather`.

    Gathered, the candidate pool is every process's positives, then every process's first hard
    negatives, and so on: query i's positive stays candidate i, its hard negatives stay after all
    positives (the ordering the reference fixed in its PR #3453).
    """
    queries, docs, offset = embeddings[0], embeddings[1:], 0
    if gather:
        queries, offset = gather_with_grad(queries)
        docs = [gather_with_grad(column)[0] for column in docs]
    rows = torch.arange(offset, offset + embeddings[0].size(0), device=queries.device)
    return queries, docs, rows


RANKING_CONTRACT = ColumnContract(inputs=("anchor", "positive"), repeated_input="negative", in_batch_negatives=True)


@register_loss
class MultipleNegativesRankingLoss(EmbeddingLoss):
    """InfoNCE over in-batch negatives: each anchor must pick its positive among all candidates in the batch.

    Candidates are every positive of the batch followed by every hard negative (column by column),
    so row i's target is candidate i: `L = -mean_i[s*sim(a_i, p_i) - logsumexp_j s*sim(a_i, c_j)]`.
    Options add the symmetric and same-type directions, per-direction softmaxes, a hardness
    penalty, and candidates gathered from every process (see `ranking_row_losses`).
    """

    Params = MultipleNegativesRankingParams
    contract = RANKING_CONTRACT

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        # No gathering in evaluation: each process scores whole eval batches, as one process would (an eval loss
        # equal to one process's, however many processes share the batches).
        queries, docs, rows = gather_columns(embeddings, self.params.gather_across_devices and self.training)
        return ranking_row_losses(queries, docs, rows, self.params).mean()
