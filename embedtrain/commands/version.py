"""`embedtrain --version`: embedtrain's version and those of what it runs on, one line each, for bug reports."""

import platform

from embedtrain.card.environment import PACKAGES, package_version


def version_text(embedtrain_version: str) -> str:
    lines = [("embedtrain", embedtrain_version), ("python", platform.python_version())]
    lines += [(name, package_version(name)) for name in PACKAGES if name != "embedtrain"]
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in lines)
