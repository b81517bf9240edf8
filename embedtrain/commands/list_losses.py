"""`embedtrain list losses`: every registered loss with its family, inputs, label, parameters and defaults, from the
registry."""

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.markup import escape
from rich.table import Table

from embedtrain.data.contract import ColumnContract
from embedtrain.losses import LOSSES
from embedtrain.losses.registry import LossFamily

WRAPPED = "those of the wrapped `loss`"
FAMILY_ORDER: tuple[LossFamily, ...] = ("dense", "sparse", "cross-encoder")


def loss_catalogue() -> list[dict[str, Any]]:
    """One JSON-serialisable entry per loss: name, family (dense, sparse or cross-encoder), description, inputs (a
    list input in brackets), label and parameters (default or "required"). Sorted by family, then name."""
    entries = []
    for name, spec in sorted(LOSSES.items(), key=lambda item: (FAMILY_ORDER.index(item[1].family), item[0])):
        contract = spec.contract
        inputs = _inputs(contract) if contract else WRAPPED
        parameters = {}
        for field_name, field in spec.params_model.model_fields.items():
            if field_name == "type":
                continue
            default = "required" if field.default is PydanticUndefined and field.default_factory is None else field.get_default(call_default_factory=True)
            parameters[field_name] = {"default": _as_json(default), "description": field.description or ""}
        entries.append({"name": name, "family": spec.family, "description": spec.description, "inputs": inputs,
                        "label": (contract.label if contract else WRAPPED), "parameters": parameters})
    return entries


def _inputs(contract: ColumnContract) -> list[str]:
    names = [f"[{name}]" if name == contract.list_input else name for name in contract.inputs]
    return names + ([f"{contract.repeated_input}..."] if contract.repeated_input else [])


def _as_json(default: Any) -> Any:
    """A default as a recipe would write it: a tuple as a list, a wrapped loss's default as its entry ({type: ...})."""
    if isinstance(default, BaseModel):
        return default.model_dump(exclude_defaults=True)
    return list(default) if isinstance(default, tuple) else default


def loss_table(catalogue: list[dict[str, Any]]) -> Table:
    """The catalogue as a table for the terminal (descriptions escaped: `[u; v]` is text, not markup)."""
    table = Table("loss", "family", "inputs", "label", "parameters (defaults)", "description", show_lines=True)
    for entry in catalogue:
        inputs = entry["inputs"] if isinstance(entry["inputs"], str) else ", ".join(entry["inputs"])
        cells = [entry["name"], entry["family"], inputs, entry["label"] or "-", format_parameters(entry["parameters"]),
                 entry["description"]]
        table.add_row(*(escape(cell) for cell in cells))
    return table


def format_parameters(parameters: dict[str, dict[str, Any]]) -> str:
    """`name=default` pairs, one line for a table cell."""
    return ", ".join(f"{name}={'<required>' if entry['default'] == 'required' else entry['default']}"
                     for name, entry in parameters.items())
