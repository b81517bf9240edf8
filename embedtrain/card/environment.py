"""What a run ran on and what it took, for the model card and the run manifest: the versions of the frameworks, the
hardware, and the facts of a finished training run (measured by the engine, shown by the card).

Versions come from the installed packages' metadata, never from importing them: fast, and an optional package
(sentence-transformers, a tracker) is reported without being imported."""

import os
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

# The distributions whose versions decide how a run behaves; sentence-transformers is optional (the models
# embedtrain reads and writes are its format).
PACKAGES = ("embedtrain", "torch", "transformers", "datasets", "accelerate", "sentence-transformers")
NOT_INSTALLED = "not installed"


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return NOT_INSTALLED


def framework_versions() -> dict[str, str]:
    """{"python": "3.11.9", "embedtrain": ..., "torch": ..., ...}: Python and every package of PACKAGES."""
    return {"python": platform.python_version()} | {name: package_version(name) for name in PACKAGES}


def hardware() -> str:
    """The machine in words, without its name: the GPUs torch sees (model and count), else the CPU cores."""
    import torch  # here, not at the top: `embedtrain --version` reads the versions without importing torch

    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        return ", ".join(f"{names.count(name)} x {name}" for name in dict.fromkeys(names))
    return f"CPU, {os.cpu_count()} cores ({platform.machine()})"


@dataclass(frozen=True)
class TrainingRun:
    """A finished training run as the card reports it; the engine measures it (and writes the same facts to run.json)."""

    seconds: float  # wall-clock time of the training loop, evaluations and checkpoints included
    hardware: str  # `hardware()` of the main process, with the number of processes when more than one
    best_step: int | None = None  # the step of the best checkpoint by training.metric_for_best_model, if any
    emissions_kg: float | None = None  # CO2-equivalent from codecarbon, when training.track_emissions is on
