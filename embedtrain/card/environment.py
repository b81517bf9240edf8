"""What a run ran on, for the model card and the run manifest: the versions of the frameworks and the hardware.

Versions come from the installed packages' metadata, never from importing them: fast, and an optional package
(sentence-transformers, a tracker) is reported without being imported."""

import os
import platform
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
