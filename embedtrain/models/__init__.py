from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.io import load_model, save_model

__all__ = ["SentenceEmbedder", "load_model", "save_model"]
