"""What the model card's parts share: what differs by kind of model, and markdown tables."""

from dataclasses import dataclass


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


def cell(text: str, limit: int | None = None) -> str:
    """`text` as one markdown table cell: on one line, `|` escaped, cut to `limit` characters (with an ellipsis)."""
    text = " ".join(str(text).split())
    if limit is not None and len(text) > limit:
        text = text[:limit - 1].rstrip() + "…"
    return text.replace("|", "\\|")


def folded(summary: str, body: str) -> str:
    """`body` in a collapsed <details> block (the Hub and GitHub render the markdown inside)."""
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"
