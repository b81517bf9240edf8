"""The evaluator registry: a YAML `type`, a parameters model (part of the recipe schema), a column contract, and the
kinds of model it can score.

An evaluator returns a flat dict of metrics named `{name}_{metric}` as the reference names them,
and knows those names before it runs, so `metric_for_best_model` is checked when the recipe loads.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ClassVar, Literal, TypeVar

import torch
from pydantic import Field

from embedtrain.data.checks import inspect_source, raise_on_errors
from embedtrain.data.contract import ColumnContract
from embedtrain.data.source import DataSource
from embedtrain.evaluation.processes import compute_in_shares
from embedtrain.models.embedder import SentenceEmbedder

SimilarityNames = list[Literal["cosine", "dot", "euclidean", "manhattan"]]


class EvaluatorParams(DataSource):
    """Base of an evaluator's recipe entry: its data source plus `type`, `name` and options."""

    type: str
    name: str = Field(description="prefix of the metric names, e.g. sts-dev -> sts-dev_spearman_cosine")
    batch_size: int = Field(32, gt=0, description="texts per forward pass when embedding")
    truncate_dim: int | None = Field(None, gt=0, description="keep only the first N embedding dimensions (Matryoshka)")


class Evaluator:
    """Embeds its data with a model and returns `{name}_{metric}: value`."""

    contract: ClassVar[ColumnContract]
    model_kinds: ClassVar[tuple[str, ...]] = ("dense", "sparse")
    """The kinds of model (`model.kind`: dense, sparse, cross_encoder) the evaluator can score; `embedtrain eval` and
    recipes refuse any other, naming an evaluator that fits."""

    def embed(self, model: SentenceEmbedder, texts: list[str], batch_size: int, truncate_dim: int | None = None,
              prompt_name: str | None = None, prompt: str | None = None, task: str | None = None) -> torch.Tensor:
        """How the evaluator embeds its texts (embed_rows); the sparse evaluators also record sparsity here."""
        return embed_rows(model, texts, batch_size, truncate_dim, prompt_name, prompt, task)

    same_task_as: ClassVar[str | None] = None
    """The dense evaluator type that does this evaluator's task for other kinds of model (a cross-encoder's
    correlation evaluator does `sts`'s); None: its own type, less a `sparse_` prefix. It names the evaluator that
    fits when one meets a model it cannot score (`evaluator_for`)."""

    def __init__(self, params: EvaluatorParams, columns: dict[str, list]) -> None:
        self.params = params
        self.columns = columns

    @classmethod
    def from_params(cls, params: EvaluatorParams, where: str) -> "Evaluator":
        """Load the evaluator's data, match its columns to `contract`, and build it; `where` names it in errors.

        Evaluators whose data is not one table of text columns (retrieval corpora, reranking lists) override this.
        """
        report, data = inspect_source(params, cls.contract_for(params), where)
        raise_on_errors([report])
        dataset, mapping = data.rows, data.mapping
        columns = {role: list(dataset[column]) for role, column in mapping.inputs}
        if mapping.label:
            columns["label"] = list(dataset[mapping.label])
        return cls(params, columns)

    @classmethod
    def contract_for(cls, params: EvaluatorParams) -> ColumnContract:
        """The columns and label its data needs: `contract`, unless the parameters decide (a classifier's labels)."""
        return cls.contract

    @classmethod
    def child_params(cls, params: EvaluatorParams) -> list[EvaluatorParams]:
        """The evaluators this one runs in its place (a sequential evaluator's children); none for a plain one."""
        return []

    @classmethod
    def metric_keys(cls, params: EvaluatorParams) -> list[str]:
        """Metric names before the `{name}_` prefix."""
        raise NotImplementedError

    @classmethod
    def primary_key(cls, params: EvaluatorParams) -> str:
        raise NotImplementedError

    @classmethod
    def metric_names(cls, params: EvaluatorParams) -> list[str]:
        return [f"{params.name}_{key}" for key in cls.metric_keys(params)]

    @property
    def primary_metric(self) -> str:
        return f"{self.params.name}_{self.primary_key(self.params)}"

    def compute(self, model: SentenceEmbedder) -> dict[str, float]:
        raise NotImplementedError

    def __call__(self, model: SentenceEmbedder) -> dict[str, float]:
        return {f"{self.params.name}_{key}": value for key, value in self.compute(model).items()}


@dataclass(frozen=True)
class EvaluatorSpec:
    type: str
    params_model: type[EvaluatorParams]
    evaluator_class: type[Evaluator]


EVALUATORS: dict[str, EvaluatorSpec] = {}

E = TypeVar("E", bound=type[Evaluator])


def register_evaluator(params: type[EvaluatorParams]) -> Callable[[E], E]:
    def decorate(evaluator_class: E) -> E:
        (type_name,) = params.model_fields["type"].annotation.__args__
        EVALUATORS[type_name] = EvaluatorSpec(type_name, params, evaluator_class)
        return evaluator_class

    return decorate


def build_evaluator(params: EvaluatorParams, where: str) -> Evaluator:
    """Load the evaluator's data, check it against the evaluator's inputs, and build it."""
    return EVALUATORS[params.type].evaluator_class.from_params(params, where)


def metric_names(params: EvaluatorParams) -> list[str]:
    return EVALUATORS[params.type].evaluator_class.metric_names(params)


MODEL_KIND_NAMES: dict[str, str] = {"dense": "a dense embedding model (SentenceTransformer)",
                                    "sparse": "a sparse embedding model (SparseEncoder)",
                                    "cross_encoder": "a cross-encoder (CrossEncoder, a reranker)"}


def _task(type_name: str) -> str:
    return EVALUATORS[type_name].evaluator_class.same_task_as or type_name.removeprefix("sparse_")


def evaluator_for(type_name: str, model_kind: str) -> str | None:
    """The evaluator type that does `type_name`'s task for a `model_kind` model (itself if it can), the most specific
    one when several can (sparse_reranking rather than reranking for a sparse model); None when none does."""
    able = [name for name, spec in EVALUATORS.items()
            if _task(name) == _task(type_name) and model_kind in spec.evaluator_class.model_kinds]
    return min(able, key=lambda name: len(EVALUATORS[name].evaluator_class.model_kinds), default=None)


def model_kind_problem(type_name: str, model_kind: str) -> str | None:
    """Why evaluator `type_name` cannot score a `model_kind` model, naming the evaluator to use; None when it can."""
    kinds = EVALUATORS[type_name].evaluator_class.model_kinds
    if model_kind in kinds:
        return None
    scores = " or ".join(MODEL_KIND_NAMES[kind] for kind in kinds)
    instead = evaluator_for(type_name, model_kind)
    fix = f"use {instead}" if instead else f"no evaluator does this for {MODEL_KIND_NAMES[model_kind]}"
    return f"{type_name} scores {scores}, and this model is {MODEL_KIND_NAMES[model_kind]}: {fix}"


def model_kind_problems(evaluators: list[EvaluatorParams], model_kind: str,
                        path: tuple[str | int, ...] = ("evaluators",)) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path, message) for every evaluator (a sequential one's children included) that cannot score a
    `model_kind` model: `evaluators.<i>.type`, or `evaluators.<i>.evaluators.<j>.type` for a child."""
    problems = []
    for index, params in enumerate(evaluators):
        children = EVALUATORS[params.type].evaluator_class.child_params(params)
        if children:
            problems += model_kind_problems(children, model_kind, (*path, index, "evaluators"))
        elif problem := model_kind_problem(params.type, model_kind):
            problems.append(((*path, index, "type"), problem))
    return problems


_shared_embeddings: ContextVar[dict | None] = ContextVar("shared_embeddings", default=None)


@contextmanager
def shared_embeddings() -> Iterator[None]:
    """Within this block, evaluators share embeddings: a text embedded by one evaluator with the same model and
    prompt is not embedded again by the next. One evaluation round (the model does not change) per block."""
    token = _shared_embeddings.set({})
    try:
        yield
    finally:
        _shared_embeddings.reset(token)


def _split_rows(embeddings: torch.Tensor) -> list[torch.Tensor]:
    """One tensor per row; a sparse (COO) matrix becomes sparse rows, cut from its coalesced indices in one pass."""
    if not embeddings.is_sparse:
        return list(embeddings)
    embeddings = embeddings.coalesce()
    (rows, columns), values = embeddings.indices(), embeddings.values()
    counts = torch.bincount(rows, minlength=embeddings.size(0)).tolist()
    dim = embeddings.size(1)
    return [torch.sparse_coo_tensor(row_columns.unsqueeze(0), row_values, (dim,), is_coalesced=True,
                                    check_invariants=False)
            for row_columns, row_values in zip(columns.split(counts), values.split(counts))]


def embed_unique(model: SentenceEmbedder, texts: list[str], batch_size: int, prompt_name: str | None = None,
                 truncate_dim: int | None = None, prompt: str | None = None,
                 task: str | None = None) -> tuple[torch.Tensor, dict[str, int]]:
    """Embed each distinct text once -> (embeddings (distinct texts, dim), {text: row of embeddings}).

    Inside `shared_embeddings()`, texts already embedded in the block are reused; inside
    `embeddings_across_processes()`, the processes of a run share the work (every process must make the same call). `truncate_dim` keeps the first
    N dimensions (after the model's own normalisation, as the reference does). `task` routes the texts of a model
    with a router (query / document). A sparse model's embeddings stay sparse.
    """
    unique = list(dict.fromkeys(texts))
    shared = _shared_embeddings.get()
    key = (id(model), model.resolve_prompt(prompt_name, prompt), task)
    known = shared.setdefault(key, {}) if shared is not None else {}
    missing = [text for text in unique if text not in known]
    if missing:
        def encode(part: list[str]) -> torch.Tensor:
            return model.encode(part, batch_size=batch_size, prompt_name=prompt_name, prompt=prompt, task=task)

        # Inside embeddings_across_processes(), each process encodes a share and all receive every row.
        known.update(zip(missing, _split_rows(compute_in_shares(encode, missing))))
    embeddings = torch.stack([known[text] for text in unique]) if unique else torch.empty((0, model.embedding_dimension))
    if truncate_dim is not None:
        embeddings = embeddings[:, :truncate_dim]
    index = {text: row for row, text in enumerate(unique)}
    return embeddings, index


def embed_rows(model: SentenceEmbedder, texts: list[str], batch_size: int, truncate_dim: int | None = None,
               prompt_name: str | None = None, prompt: str | None = None, task: str | None = None) -> torch.Tensor:
    """Embeddings of `texts` in their order (len(texts), dim), each distinct text embedded once."""
    embeddings, index = embed_unique(model, texts, batch_size, prompt_name, truncate_dim, prompt, task)
    return embeddings.index_select(0, torch.tensor([index[text] for text in texts], dtype=torch.long))
