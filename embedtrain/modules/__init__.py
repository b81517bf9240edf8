"""nn.Modules of an embedding model, each saved and loaded in the sentence-transformers layout."""

from embedtrain.modules.dense import Dense
from embedtrain.modules.normalize import Normalize
from embedtrain.modules.pooling import Pooling
from embedtrain.modules.static_embedding import StaticEmbedding
from embedtrain.modules.transformer import Transformer

__all__ = ["Dense", "Normalize", "Pooling", "StaticEmbedding", "Transformer"]
