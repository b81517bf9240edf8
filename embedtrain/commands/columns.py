"""`--columns INPUT=COLUMN,...`, the same for every command: which data column feeds which input of the loss or
evaluator, as a dataset's `columns:` in a recipe.

`anchor=q,positive=p,negative=n1,negative=n2,label=score` maps the inputs `anchor` and `positive` to the
columns `q` and `p`, the repeated input `negative` (hard negatives) to `n1` and `n2` in that order, and the
label to `score`.
"""

from embedtrain.recipe.overrides import split_key_value

COLUMNS_SYNTAX = "INPUT=COLUMN, e.g. anchor=question,positive=answer,label=score"


def parse_columns(text: str) -> dict[str, str | list[str]]:
    """`anchor=q,positive=p,negative=n1,negative=n2` -> {anchor: q, positive: p, negative: [n1, n2]}."""
    mapping: dict[str, str | list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        role, column = split_key_value(item, "--columns", COLUMNS_SYNTAX, require_value=True)
        if role in mapping:  # a repeated input (hard negatives) given several times
            previous = mapping[role]
            mapping[role] = [*(previous if isinstance(previous, list) else [previous]), column]
        else:
            mapping[role] = column
    return mapping
