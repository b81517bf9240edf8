"""The loss registry: one entry per loss class, which declares its YAML name, parameters and data contract.

A loss is added by writing one file that defines a parameters model (which becomes part of the
recipe schema) and a loss class decorated with `register_loss`. The class declares, as class
attributes, its `Params`, its `contract` (which inputs, i.e. text columns, the loss takes, in
order, and which label it needs; the data layer checks every dataset against it before training
starts) and its properties (`model_kinds`, `not_truncatable`, `saved_similarity`). It is built from
its validated parameters alone: `LossClass(params, model)`. Wrappers (Matryoshka, SpladeLoss, ...)
declare no contract of their own: they take the inputs and label of the loss they wrap (`params.loss`).

Two kinds of loss share these declarations (`RegisteredLoss`): an `EmbeddingLoss` embeds each input
column with the model (dense and sparse models); a `CrossEncoderLoss` scores (text, text) pairs with it.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol, TypeVar, Union

from pydantic import Field
from torch import Tensor, nn

from embedtrain.config import StrictModel
from embedtrain.data.contract import ColumnContract
from embedtrain.errors import RecipeError
from embedtrain.similarity import SimilarityName

if TYPE_CHECKING:
    from embedtrain.models.embedder import SentenceEmbedder


ModelKind = Literal["dense", "sparse", "cross_encoder"]
"""The kinds of model a loss can train: dense sentence embeddings, sparse (vocabulary-sized) ones, or a cross-encoder
that scores text pairs."""

LossFamily = Literal["dense", "sparse", "cross-encoder"]
"""The model family a loss belongs to, as `embedtrain list losses` shows it."""


class LossParams(StrictModel):
    """Base class for a loss's recipe parameters. Subclasses declare `type: Literal["<LossName>"]`.

    A variant that fixes an option of the loss it reuses declares it as a `ClassVar`: the loss reads
    it like an option, and the recipe schema does not offer it.
    """

    type: str


if TYPE_CHECKING:
    LossConfig = LossParams
else:
    # A wrapper's `loss:` (any registered loss): a forward reference, resolved by `resolve_wrapped_losses`.
    LossConfig = "LossConfig"


class Embedder(Protocol):
    """What a loss calls to embed one input column: tokenized features -> dict with `sentence_embedding`.

    The model itself, or a view of it that a modifier loss passes on (truncated embeddings,
    embeddings of an earlier layer).
    """

    def __call__(self, features: dict[str, Tensor]) -> dict[str, Tensor]: ...


class RegisteredLoss(nn.Module):
    """What every registered loss declares, whatever it computes: its parameters, data contract and properties.

    The model is passed to `forward`, not stored, so one loss works with the bare model, a DDP-wrapped one,
    or a compiled one.
    """

    Params: ClassVar[type[LossParams]]
    """The recipe parameters; their `type` is `Literal["<class name>"]`. The loss reads its options from `self.params`."""
    contract: ClassVar[ColumnContract | None]
    """The inputs and label the loss reads; None for a wrapper, which reads those of the loss it wraps (`params.loss`)."""
    model_kinds: ClassVar[tuple[ModelKind, ...]] = ("dense",)
    """The kinds of model this loss can train as a recipe's loss (the outermost one). Empty for a loss that only
    works inside a wrapper (a sparse loss inside SpladeLoss or CSRLoss)."""
    sparse_inner_loss: ClassVar[bool] = False
    """A sparse wrapper (SpladeLoss, CachedSpladeLoss, CSRLoss) can wrap this loss: one of the sparse losses."""
    not_truncatable: ClassVar[str | None] = None
    """Why the loss cannot train on truncated embeddings (inside MatryoshkaLoss); None when it can."""
    saved_similarity: ClassVar[SimilarityName | None] = None
    """The similarity a model trained with this loss is saved with; None: the model's own. The reference's sparse
    cosine losses set their model's to cosine, so a model trained with them is compared by cosine after loading."""

    def __init__(self, params: LossParams, model: Any = None) -> None:
        """`model` is the model being trained, for losses built around it (a classifier sized to its embeddings,
        a copy of it, a teacher reading its batches, a check of its number of outputs); the others ignore it."""
        super().__init__()
        self.params = params

    def set_training_progress(self, step: int, total_steps: int) -> None:
        """Called by the trainer before every training batch: `step` optimizer steps are done out of `total_steps`.

        For a loss whose terms follow a schedule over training (SpladeLoss's regulariser warm-up);
        nothing by default.
        """

    @classmethod
    def contract_for(cls, params: LossParams) -> ColumnContract:
        """The data contract under these parameters (e.g. the number of classes); the declared one by default."""
        return cls.contract

    @classmethod
    def truncation_refusal(cls, params: LossParams) -> str | None:
        """Why the loss, under these parameters, cannot train on truncated embeddings; `not_truncatable` by default."""
        return cls.not_truncatable


class EmbeddingLoss(RegisteredLoss):
    """A loss over sentence embeddings.

    `forward(model, features, labels)` embeds each input column with `model` and hands the
    embeddings to `compute_loss_from_embeddings`; wrappers (Matryoshka, GradCache, ...) compose
    through that split.
    """

    def forward(self, model: Embedder, features: list[dict[str, Tensor]],
                labels: Tensor | None) -> Tensor | dict[str, Tensor]:
        # A model embeds the columns together when it can (SentenceEmbedder.embed_columns); views of it
        # (a Matryoshka truncation, one layer's output) are called column by column.
        embed_columns = getattr(model, "embed_columns", None)
        embeddings = (embed_columns(features) if embed_columns
                      else [model(column)["sentence_embedding"] for column in features])
        return self.compute_loss_from_embeddings(embeddings, labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor | dict[str, Tensor]:
        raise NotImplementedError

    def targets(self, features: list[dict[str, Tensor]], labels: Tensor | None) -> Tensor | None:
        """The labels this loss trains against: the batch's labels by default; a loss with a teacher model computes
        them. Modifier losses that run their inner loss several times per step ask once and pass the result on."""
        return labels


class PairScorer(Protocol):
    """What a cross-encoder loss uses of its model (an nn.Module): its number of outputs and its pair scores."""

    num_labels: int

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> Tensor:
        """Raw logits of shape (len(pairs), num_labels), with autograd, in the model's current train/eval mode."""
        ...

    def parameters(self) -> Iterator[nn.Parameter]:
        """The module's parameters: a cached loss reads from them which device's RNG the model's dropout draws on."""
        ...


CrossEncoderInputs = list[list[str] | list[list[str]]]
"""A batch as a cross-encoder loss receives it: one entry per input of its contract, in order; each the column's
raw texts (one per row), or for a list input (a row's candidate documents) one list of texts per row."""

CrossEncoderLabels = Tensor | list[list[float]] | None
"""A tensor (batch,) or (batch, k) for labels of one shape per row (int64 for class ids, else float32); for a
`list_scores` label, one list of floats per row, as long as that row's documents; None without a label."""


class CrossEncoderLoss(RegisteredLoss):
    """A loss over a cross-encoder's scores of (text, text) pairs.

    `forward(model, inputs, labels)` gets the batch's raw texts (`CrossEncoderInputs`) and calls only
    `model.score_pairs(pairs)`; prompts are the model's (or the caller's) business, already in the texts
    it tokenizes. Built as `LossClass(params, model)`, where `model.num_labels` is checked (`num_labels_problem`).
    """

    model_kinds = ("cross_encoder",)
    not_truncatable = "it trains a cross-encoder, which has no embeddings to truncate"
    required_num_labels: ClassVar[Literal["one", "several"]] = "one"
    """The model outputs the loss needs: one score per pair (most), or a logit per class (CrossEntropyLoss)."""

    def __init__(self, params: LossParams, model: PairScorer) -> None:
        super().__init__(params, model)
        problem = self.num_labels_problem(model.num_labels)
        if problem:
            raise RecipeError(problem)

    @classmethod
    def num_labels_problem(cls, num_labels: int) -> str | None:
        """Why a cross-encoder with `num_labels` outputs cannot train with this loss; None when it can."""
        if cls.required_num_labels == "one" and num_labels != 1:
            return (f"{cls.__name__} trains a cross-encoder with one output (a relevance score), but the model has "
                    f"{num_labels} labels; set model.cross_encoder.num_labels: 1, or use CrossEntropyLoss for "
                    f"{num_labels} classes")
        if cls.required_num_labels == "several" and num_labels < 2:
            return (f"{cls.__name__} classifies pairs into the model's labels, but the model has {num_labels}; set "
                    f"model.cross_encoder.num_labels to the number of classes (at least 2), or use "
                    f"BinaryCrossEntropyLoss for one relevance score")
        return None

    def forward(self, model: PairScorer, inputs: CrossEncoderInputs, labels: CrossEncoderLabels) -> Tensor:
        raise NotImplementedError


@dataclass(frozen=True)
class LossSpec:
    """A registered loss as the recipe schema, the data checks and `embedtrain list losses` see it."""

    loss_class: type[RegisteredLoss]

    @property
    def name(self) -> str:
        return self.loss_class.__name__

    @property
    def family(self) -> LossFamily:
        """The model family the loss trains: a cross-encoder loss, a sparse one (its own, or one a sparse wrapper
        wraps), else dense."""
        kinds = self.loss_class.model_kinds
        if "cross_encoder" in kinds:
            return "cross-encoder"
        return "sparse" if "sparse" in kinds or self.loss_class.sparse_inner_loss else "dense"

    @property
    def params_model(self) -> type[LossParams]:
        return self.loss_class.Params

    @property
    def contract(self) -> ColumnContract | None:
        """None for a wrapper, which takes the inputs and label of the loss it wraps."""
        return self.loss_class.contract

    @property
    def description(self) -> str:
        return (self.loss_class.__doc__ or "").strip().splitlines()[0]


LOSSES: dict[str, LossSpec] = {}

L = TypeVar("L", bound=type[RegisteredLoss])


def register_loss(loss_class: L) -> L:
    """Class decorator: registers a loss under its class name, which is its `type` in a recipe."""
    name = loss_class.__name__
    params = getattr(loss_class, "Params", None)
    if params is None or params.model_fields["type"].annotation != Literal[name]:  # type: ignore[valid-type]
        raise TypeError(f"{name}.Params must be a LossParams model whose type is Literal['{name}'], the name of the "
                        f"loss class")
    if not hasattr(loss_class, "contract"):
        raise TypeError(f"{name} must declare its contract (None for a wrapper, which reads its wrapped loss's)")
    if name in LOSSES:
        raise TypeError(f"loss {name!r} is registered twice")
    LOSSES[name] = LossSpec(loss_class)
    return loss_class


def loss_config_union() -> Any:
    """The discriminated union of every registered loss's parameters: a `losses:` entry in a recipe."""
    return params_union([spec.params_model for spec in LOSSES.values()])


def embedding_loss_config_union() -> Any:
    """The union of the embedding losses' parameters: what a dense wrapper (MatryoshkaLoss, ...) can wrap; a
    cross-encoder loss has no embeddings to hand it."""
    return params_union([spec.params_model for spec in LOSSES.values() if issubclass(spec.loss_class, EmbeddingLoss)])


def params_union(members: list[type[LossParams]]) -> Any:
    """The discriminated union (on `type`) of these parameter models."""
    # Union[...] of a tuple built at run time: the `X | Y` syntax cannot express a registry-sized union.
    return Annotated[Union[tuple(members)], Field(discriminator="type")]  # noqa: UP007


def resolve_wrapped_losses(unions: dict[str, Any]) -> None:
    """Complete the parameters of every wrapper: their `loss:` names a union of registered losses (`LossConfig`,
    ...) by a forward reference, which `unions` resolves once every loss is registered."""
    for spec in LOSSES.values():
        if not spec.params_model.__pydantic_complete__:
            spec.params_model.model_rebuild(_types_namespace=unions)


def wrapped_params(params: LossParams) -> LossParams | None:
    """The parameters of the loss a wrapper wraps (its `loss:`); None for a loss that is no wrapper."""
    return params.loss if LOSSES[params.type].contract is None else None  # type: ignore[attr-defined]


def loss_contract(params: LossParams, num_labels: int | None = None) -> ColumnContract:
    """The inputs and label a configured loss reads (under its parameters, e.g. the number of classes);
    a wrapper's are those of the loss it wraps.

    `num_labels`: a cross-encoder's number of outputs, when known: the classes its class labels must lie
    within (CrossEntropyLoss reads a logit per class).
    """
    wrapped = wrapped_params(params)
    if wrapped is not None:
        return loss_contract(wrapped, num_labels)
    loss_class = LOSSES[params.type].loss_class
    contract = loss_class.contract_for(params)
    if num_labels is not None and issubclass(loss_class, CrossEncoderLoss) and contract.label == "class":
        return replace(contract, num_classes=num_labels)
    return contract


def saved_similarity(params: LossParams) -> SimilarityName | None:
    """The similarity a model trained with this configured loss is saved with (see `RegisteredLoss.saved_similarity`);
    None: the model's own. A wrapper's is that of the loss it wraps, whose constructor sets it in the reference."""
    wrapped = wrapped_params(params)
    if wrapped is not None:
        return saved_similarity(wrapped)
    return LOSSES[params.type].loss_class.saved_similarity


def total_loss(loss: Tensor | dict[str, Tensor]) -> Tensor:
    """A loss's value for training: a loss that returns named terms counts as their sum."""
    return sum(loss.values()) if isinstance(loss, dict) else loss


def build_loss(params: LossParams, model: "SentenceEmbedder | PairScorer") -> RegisteredLoss:
    """Instantiate the loss a recipe entry describes, for `model`."""
    return LOSSES[params.type].loss_class(params, model)
