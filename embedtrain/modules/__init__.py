"""nn.Modules of an embedding model, each saved and loaded in the sentence-transformers layout."""

from embedtrain.modules.dense import Dense
from embedtrain.modules.mlm_transformer import MLMTransformer
from embedtrain.modules.normalize import Normalize
from embedtrain.modules.pooling import Pooling
from embedtrain.modules.router import Router
from embedtrain.modules.sparse_auto_encoder import SparseAutoEncoder
from embedtrain.modules.sparse_static_embedding import SparseStaticEmbedding
from embedtrain.modules.splade_pooling import SpladePooling
from embedtrain.modules.static_embedding import StaticEmbedding
from embedtrain.modules.transformer import Transformer

__all__ = ["Dense", "MLMTransformer", "Normalize", "Pooling", "Router", "SparseAutoEncoder", "SparseStaticEmbedding",
           "SpladePooling", "StaticEmbedding", "Transformer"]
