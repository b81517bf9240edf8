from pathlib import Path
from typing import Literal

from torch import Tensor, nn

from embedtrain.errors import ModelLoadError
from embedtrain.modules.files import load_weights, read_json, save_weights, write_json

Activation = Literal["tanh", "identity", "relu", "gelu", "sigmoid"]

ACTIVATIONS: dict[str, tuple[str, type[nn.Module]]] = {
    "tanh": ("torch.nn.modules.activation.Tanh", nn.Tanh),
    "identity": ("torch.nn.modules.linear.Identity", nn.Identity),
    "relu": ("torch.nn.modules.activation.ReLU", nn.ReLU),
    "gelu": ("torch.nn.modules.activation.GELU", nn.GELU),
    "sigmoid": ("torch.nn.modules.activation.Sigmoid", nn.Sigmoid),
}
"""Recipe name -> (class path written to config.json, class)."""


class Dense(nn.Module):
    """A linear layer (+ activation) on `sentence_embedding`, e.g. to change the output dimension."""

    st_type = "sentence_transformers.models.Dense"

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: Activation = "tanh") -> None:
        super().__init__()
        self.in_features, self.out_features, self.bias, self.activation = in_features, out_features, bias, activation
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation_function = ACTIVATIONS[activation][1]()

    @property
    def embedding_dimension(self) -> int:
        return self.out_features

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        features["sentence_embedding"] = self.activation_function(self.linear(features["sentence_embedding"]))
        return features

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / "config.json", {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "activation_function": ACTIVATIONS[self.activation][0],
        })
        save_weights(self, directory)  # keys linear.weight / linear.bias, as the reference writes

    @classmethod
    def load(cls, directory: Path) -> "Dense":
        config = read_json(directory / "config.json")
        if config.get("use_residual"):
            raise ModelLoadError(f"{directory}: Dense with use_residual=true is not supported")
        by_path = {path: name for name, (path, _) in ACTIVATIONS.items()}
        activation_path = config.get("activation_function", ACTIVATIONS["tanh"][0])
        if activation_path not in by_path:
            raise ModelLoadError(f"{directory}/config.json: unsupported activation_function {activation_path!r}; "
                                 f"supported: {sorted(by_path)}")
        dense = cls(config["in_features"], config["out_features"], config.get("bias", True), by_path[activation_path])
        load_weights(dense, directory)
        return dense
