"""`embedtrain list losses`: every registered loss with its inputs, label, parameters and defaults, from the registry."""

from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from rich.markup import escape
from rich.table import Table

from embedtrain.losses import LOSSES

WRAPPED = "those of the wrapped `loss`"


def loss_catalogue() -> list[dict[str, Any]]:
    """One JSON-serialisable entry per loss: name, description, inputs, label and parameters (default or "required")."""
    entries = []
    for name, spec in sorted(LOSSES.items()):
        contract = spec.contract
        inputs = list(contract.inputs) + ([f"{contract.repeated_input}..."] if contract.repeated_input else []) if contract else WRAPPED
        parameters = {}
        for field_name, field in spec.params_model.model_fields.items():
            if field_name == "type":
                continue
            default = "required" if field.default is PydanticUndefined and field.default_factory is None else field.get_default(call_default_factory=True)
            parameters[field_name] = {"default": _as_json(default), "description": field.description or ""}
        entries.append({"name": name, "description": spec.description, "inputs": inputs,
                        "label": (contract.label if contract else WRAPPED), "parameters": parameters})
    return entries


def _as_json(default: Any) -> Any:
    """A default as a recipe would write it: a tuple as a list, a wrapped loss's default as its entry ({type: ...})."""
    if isinstance(default, BaseModel):
        return default.model_dump(exclude_defaults=True)
    return list(default) if isinstance(default, tuple) else default


def loss_table(catalogue: list[dict[str, Any]]) -> Table:
    """The catalogue as a table for the terminal (descriptions escaped: `[u; v]` is text, not markup)."""
    table = Table("loss", "inputs", "label", "parameters (defaults)", "description", show_lines=True)
    for entry in catalogue:
        inputs = entry["inputs"] if isinstance(entry["inputs"], str) else ", ".join(entry["inputs"])
        cells = [entry["name"], inputs, entry["label"] or "-", format_parameters(entry["parameters"]), entry["description"]]
        table.add_row(*(escape(cell) for cell in cells))
    return table


def format_parameters(parameters: dict[str, dict[str, Any]]) -> str:
    """`name=default` pairs, one line for a table cell."""
    return ", ".join(f"{name}={'<required>' if entry['default'] == 'required' else entry['default']}"
                     for name, entry in parameters.items())
