"""The sparse encoder: SPLADE, inference-free SPLADE and CSR, as one module sequence like the dense embedder.

- SPLADE: MLMTransformer -> SpladePooling.
- Inference-free SPLADE: Router {query: [SparseStaticEmbedding], document: [MLMTransformer, SpladePooling]}.
- CSR: Transformer -> Pooling [-> Dense] [-> Normalize] -> SparseAutoEncoder.

What losses see: `model(features)` returns the features dict with `sentence_embedding`, a dense
(batch, vocabulary or hidden_dim) tensor (the reference's sparse losses take it dense too), plus the
SparseAutoEncoder's `decoded_embedding_*`/`sentence_embedding_*` keys for CSR. Routed models read the route from
`features["task"]`, which `tokenize(texts, prompt, task)` stamps (see embedtrain.modules.router).
`encode` returns sparse COO tensors.
"""

from typing import ClassVar

import torch
from torch import Tensor, nn

from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.modules import Router, SparseAutoEncoder, SparseStaticEmbedding, SpladePooling, Transformer
from embedtrain.similarity import SimilarityName


def keep_top_values(embeddings: Tensor, max_active_dims: int) -> Tensor:
    """Each row with only its `max_active_dims` largest values by magnitude (the rest set to 0), as the reference's
    `select_max_active_dims`."""
    k = min(max_active_dims, embeddings.size(-1))
    top = torch.topk(embeddings.abs(), k=k, dim=-1).indices
    return torch.zeros_like(embeddings).scatter(-1, top, embeddings.gather(-1, top))


SPARSE_OUTPUT_MODULES = (SpladePooling, SparseAutoEncoder, SparseStaticEmbedding, Router)
"""The modules whose output is a sparse vector: one of them must come last."""


class SparseEmbedder(SentenceEmbedder):
    """A sparse encoder. `max_active_dims` (saved with the model; CSR defaults to its autoencoder's k) caps the
    non-zero dimensions `encode` returns per text. Similarity defaults to the dot product."""

    model_type: ClassVar[str] = "SparseEncoder"
    input_module_types: ClassVar[tuple[type[nn.Module], ...]] = (Transformer, SparseStaticEmbedding, Router)

    def __init__(self, modules: list[nn.Module], *, prompts: dict[str, str] | None = None,
                 default_prompt_name: str | None = None, similarity_fn_name: SimilarityName = "dot",
                 max_active_dims: int | None = None) -> None:
        super().__init__(modules, prompts=prompts, default_prompt_name=default_prompt_name,
                         similarity_fn_name=similarity_fn_name)
        if not isinstance(modules[-1], SPARSE_OUTPUT_MODULES):
            raise ValueError(f"a SparseEncoder ends with one of {[cls.__name__ for cls in SPARSE_OUTPUT_MODULES]}, "
                             f"not {type(modules[-1]).__name__}")
        if max_active_dims is not None and max_active_dims <= 0:
            raise ValueError(f"max_active_dims must be a positive integer, not {max_active_dims}")
        autoencoder = next((module for module in self if isinstance(module, SparseAutoEncoder)), None)
        self.max_active_dims = max_active_dims or (autoencoder.k if autoencoder is not None else None)

    @property
    def router(self) -> Router | None:
        return self[0] if isinstance(self[0], Router) else None

    @property
    def tokenizer(self):
        """The tokenizer whose vocabulary ids are the dimensions of SPLADE vectors (used by `decode`)."""
        return self[0].tokenizer

    @property
    def embedding_dimension(self) -> int:
        """That of the last module that knows it (SpladePooling's saved dimension may be null)."""
        return next(module.embedding_dimension for module in reversed(self) if module.embedding_dimension)

    def input_module_for(self, task: str | None) -> nn.Module:
        return self.router.input_module(task) if self.router is not None else self[0]

    def tokenize(self, texts: list[str], prompt: str | None = None, task: str | None = None) -> dict[str, Tensor]:
        if self.router is not None:
            return self.router.tokenize(texts, prompt, task)
        return self[0].tokenize(texts, prompt)

    def forward(self, features: dict[str, Tensor], task: str | None = None,
                max_active_dims: int | None = None) -> dict[str, Tensor]:
        """Run every module; `task` (routers) and `max_active_dims` (the autoencoder's k) reach the modules that
        declare them in `forward_kwargs`, as in the reference."""
        kwargs = {"task": task, "max_active_dims": max_active_dims}
        for module in self:
            accepted = {key: value for key, value in kwargs.items()
                        if value is not None and key in getattr(module, "forward_kwargs", ())}
            features = module(features, **accepted)
        return features

    @torch.inference_mode()
    def encode(self, texts: list[str], *, batch_size: int = 32, prompt_name: str | None = None,
               prompt: str | None = None, task: str | None = None, max_active_dims: int | None = None) -> Tensor:
        """Embed `texts` -> sparse COO float32 tensor (len(texts), dim) on the CPU, coalesced, in the input order.

        At most `max_active_dims` (default: the model's) non-zero values per row: the largest by magnitude.
        `task` routes a model with a Router ("query" / "document"; default its default route).
        """
        max_active_dims = max_active_dims or self.max_active_dims
        forward_kwargs = {"max_active_dims": max_active_dims} if max_active_dims else {}
        rows, columns, values = [], [], []
        for positions, batch in self.embed_batches(texts, batch_size, self.resolve_prompt(prompt_name, prompt), task,
                                                   **forward_kwargs):
            batch = batch.float()
            if max_active_dims:
                batch = keep_top_values(batch, max_active_dims)
            batch_rows, batch_columns = batch.nonzero(as_tuple=True)
            rows.append(torch.tensor(positions, dtype=torch.long)[batch_rows.cpu()])
            columns.append(batch_columns.cpu())
            values.append(batch[batch_rows, batch_columns].cpu())
        indices = torch.stack([torch.cat(rows), torch.cat(columns)]) if rows else torch.empty((2, 0), dtype=torch.long)
        values = torch.cat(values) if values else torch.empty(0)
        return torch.sparse_coo_tensor(indices, values, (len(texts), self.embedding_dimension),
                                       check_invariants=False).coalesce()

    def encode_query(self, texts: list[str], **options) -> Tensor:
        """`encode` with the `query` prompt (if the model has one) and the `query` route."""
        return self.encode(texts, prompt_name="query", task="query", **options)

    def encode_document(self, texts: list[str], **options) -> Tensor:
        """`encode` with the `document` prompt (if the model has one) and the `document` route."""
        return self.encode(texts, prompt_name="document", task="document", **options)

    def decode(self, embeddings: Tensor, top_k: int | None = None) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """The (token, weight) pairs of each vector's non-zero dimensions, heaviest first, at most `top_k` of them;
        a list per row for a (n, vocab) input, one list for a (vocab,) input. Meaningful for SPLADE, whose
        dimensions are vocabulary ids (CSR's latent dimensions are not tokens)."""
        if top_k is not None and top_k <= 0:
            raise ValueError(f"top_k must be a positive integer, not {top_k}")
        single = embeddings.dim() == 1
        dense = embeddings.to_dense() if embeddings.is_sparse else embeddings
        decoded = []
        for row in (dense.unsqueeze(0) if single else dense):
            ids = row.nonzero(as_tuple=True)[0]
            weights = row[ids]
            order = weights.argsort(descending=True, stable=True)[:top_k]
            tokens = self.tokenizer.convert_ids_to_tokens(ids[order].tolist())
            decoded.append(list(zip(tokens, weights[order].tolist())))
        return decoded[0] if single else decoded

    @staticmethod
    def sparsity(embeddings: Tensor) -> dict[str, float]:
        """`active_dims` (mean non-zero dimensions per row) and `sparsity_ratio` (1 - active_dims / dim)."""
        matrix = embeddings.unsqueeze(0) if embeddings.dim() == 1 else embeddings
        if matrix.size(0) == 0 or matrix.size(1) == 0:
            return {"active_dims": 0.0, "sparsity_ratio": 1.0}
        active = float(active_counts(matrix).float().mean())
        return {"active_dims": active, "sparsity_ratio": 1.0 - active / matrix.size(1)}


def active_counts(embeddings: Tensor) -> Tensor:
    """Non-zero dimensions of each row of a (n, dim) dense or sparse tensor -> (n,) int64."""
    if embeddings.is_sparse:
        embeddings = embeddings.coalesce()
        nonzero_rows = embeddings.indices()[0][embeddings.values() != 0]
        return torch.bincount(nonzero_rows, minlength=embeddings.size(0))
    return (embeddings != 0).sum(dim=1)
