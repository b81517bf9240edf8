"""The versions a saved model records in config_sentence_transformers.json (`__version__`)."""

import torch
import transformers

from embedtrain import __version__

FORMAT_VERSION = "5.1.2"
"""The reference version whose layout is written, so that older loaders do not warn."""


def saved_versions() -> dict[str, str]:
    return {"sentence_transformers": FORMAT_VERSION, "transformers": transformers.__version__,
            "pytorch": torch.__version__, "embedtrain": __version__}
