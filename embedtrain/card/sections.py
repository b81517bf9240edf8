"""What the model card's parts share: the summary of a training dataset, what differs by kind of model, tables."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSummary:
    name: str
    source: str
    rows: int
    columns: str  # the resolved column mapping
    loss: str


@dataclass(frozen=True)
class KindSections:
    """The parts of a card that depend on the kind of model: its hub tags and pipeline tag, default title, one-paragraph
    description, rows of the details table (beside base model and datasets) and usage snippet (markdown)."""

    tags: list[str]
    pipeline_tag: str
    title: str
    description: str
    details: list[list[str]]
    usage: str


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(":---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
