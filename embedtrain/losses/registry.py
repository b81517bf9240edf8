"""The loss registry: one entry per loss, declaring its YAML name, parameters and data contract.

A loss is added by writing one file that defines a parameters model (which becomes part of the
recipe schema) and a loss class decorated with `register_loss`. The contract says which inputs
(text columns) the loss takes, in order, and which label it needs; the data layer checks every
dataset against it before training starts. Modifier losses (Matryoshka, ...) declare no contract
of their own: they take the inputs and label of the loss they wrap (`loss_contract`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol, TypeVar, Union

from pydantic import Field
from torch import Tensor, nn

from embedtrain.config import StrictModel
from embedtrain.data.contract import ColumnContract

if TYPE_CHECKING:
    from embedtrain.models.embedder import SentenceEmbedder


ModelKind = Literal["dense", "sparse"]
"""The kinds of embedding model a loss can train: dense sentence embeddings, or sparse (vocabulary-sized) ones."""


class LossParams(StrictModel):
    """Base class for a loss's recipe parameters. Subclasses declare `type: Literal["<LossName>"]`."""

    type: str


class Embedder(Protocol):
    """What a loss calls to embed one input column: tokenized features -> dict with `sentence_embedding`.

    The model itself, or a view of it that a modifier loss passes on (truncated embeddings,
    embeddings of an earlier layer).
    """

    def __call__(self, features: dict[str, Tensor]) -> dict[str, Tensor]: ...


class EmbeddingLoss(nn.Module):
    """A loss over sentence embeddings.

    `forward(model, features, labels)` embeds each input column with `model` and hands the
    embeddings to `compute_loss_from_embeddings`; wrappers (Matryoshka, GradCache, ...) compose
    through that split. The model is passed in, not stored, so one loss works with the bare model,
    a DDP-wrapped one, or a compiled one.
    """

    params: LossParams
    model_kinds: ClassVar[tuple[ModelKind, ...]] = ("dense",)
    """The kinds of model this loss can train as a recipe's loss (the outermost one). Empty for a loss that only
    works inside a wrapper (a sparse loss inside SpladeLoss or CSRLoss)."""

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

    def set_training_progress(self, step: int, total_steps: int) -> None:
        """Called by the trainer before every training batch: `step` optimizer steps are done out of `total_steps`.

        For a loss whose terms follow a schedule over training (SpladeLoss's regulariser warm-up);
        nothing by default.
        """

    @classmethod
    def contract_for(cls, params: LossParams, contract: ColumnContract) -> ColumnContract:
        """The data contract under these parameters (e.g. the number of classes); the declared one by default."""
        return contract

    @classmethod
    def from_params(cls, params: LossParams, model: "SentenceEmbedder") -> "EmbeddingLoss":
        """Build the loss from its recipe parameters for `model` (the model being trained)."""
        return cls(**params.model_dump(exclude={"type"}))

    def get_config_dict(self) -> dict[str, Any]:
        """Parameters for the model card, as given in the recipe."""
        return self.params.model_dump(exclude={"type"})


@dataclass(frozen=True)
class LossSpec:
    name: str
    params_model: type[LossParams]
    contract: ColumnContract | None
    """None for a modifier, which takes the inputs and label of the loss it wraps."""
    loss_class: type[EmbeddingLoss]

    @property
    def description(self) -> str:
        return (self.loss_class.__doc__ or "").strip().splitlines()[0]


LOSSES: dict[str, LossSpec] = {}

L = TypeVar("L", bound=type[EmbeddingLoss])


def register_loss(params: type[LossParams], contract: ColumnContract | None) -> Callable[[L], L]:
    """Class decorator: registers a loss under its class name, which is its `type` in a recipe."""

    def decorate(loss_class: L) -> L:
        name = loss_class.__name__
        declared = params.model_fields["type"].annotation
        if declared != Literal[name]:  # type: ignore[valid-type]
            raise TypeError(f"{params.__name__}.type must be Literal['{name}'], the name of the loss class")
        if name in LOSSES:
            raise TypeError(f"loss {name!r} is registered twice")
        LOSSES[name] = LossSpec(name=name, params_model=params, contract=contract, loss_class=loss_class)
        loss_class.params_model = params  # type: ignore[attr-defined]
        return loss_class

    return decorate


def loss_config_union() -> Any:
    """The discriminated union of every registered loss's parameters: a `losses:` entry in a recipe."""
    # Union[...] of a tuple built at run time: the `X | Y` syntax cannot express a registry-sized union.
    return Annotated[Union[tuple(spec.params_model for spec in LOSSES.values())], Field(discriminator="type")]  # noqa: UP007


def loss_contract(params: LossParams) -> ColumnContract:
    """The inputs and label a configured loss reads (under its parameters, e.g. the number of classes);
    a modifier's are those of the loss it wraps."""
    spec = LOSSES[params.type]
    if spec.contract is None:
        return loss_contract(params.loss)  # type: ignore[attr-defined]
    return spec.loss_class.contract_for(params, spec.contract)


def total_loss(loss: Tensor | dict[str, Tensor]) -> Tensor:
    """A loss's value for training: a loss that returns named terms counts as their sum."""
    return sum(loss.values()) if isinstance(loss, dict) else loss


def build_loss(params: LossParams, model: "SentenceEmbedder") -> EmbeddingLoss:
    """Instantiate the loss a recipe entry describes, for `model`."""
    spec = LOSSES[params.type]
    loss = spec.loss_class.from_params(params, model)
    loss.params = params
    return loss


def saved_similarity(params: LossParams) -> str | None:
    """Placeholder until the loss declarations land (branch arch-losses)."""
    return None
