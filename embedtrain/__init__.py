"""embedtrain: train text embedding models from a YAML recipe."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("embedtrain")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
