"""`embedtrain --version`: embedtrain's version and those of what it runs on, one line each, for bug reports.

Read from the installed packages' metadata, never by importing them: fast, and sentence-transformers (not a
dependency of embedtrain) is reported without being imported."""

import platform
from importlib.metadata import PackageNotFoundError, version

# The distributions whose versions decide how a run behaves; sentence-transformers is optional (the models
# embedtrain reads and writes are its format).
PACKAGES = ("torch", "transformers", "datasets", "accelerate", "sentence-transformers")
NOT_INSTALLED = "not installed"


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return NOT_INSTALLED


def version_text(embedtrain_version: str) -> str:
    lines = [("embedtrain", embedtrain_version), ("python", platform.python_version())]
    lines += [(name, package_version(name)) for name in PACKAGES]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in lines)
