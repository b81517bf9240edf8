"""The dense sentence embedder: Transformer -> Pooling -> [Dense] -> [Normalize]."""

from collections.abc import Iterator
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from embedtrain.modules import Dense, Pooling, StaticEmbedding, Transformer
from embedtrain.similarity import MATRIX, PAIRWISE, SimilarityName


def resolve_prompt(prompts: dict[str, str], default_prompt_name: str | None, prompt_name: str | None = None,
                   prompt: str | None = None) -> str | None:
    """A model's prompt for a call: an explicit prompt wins; else the named one; else the default prompt, if any."""
    if prompt is not None:
        return prompt
    name = prompt_name if prompt_name is not None else default_prompt_name
    if name is None:
        return None
    if name not in prompts:
        raise ValueError(f"prompt {name!r} is not defined; the model has prompts {sorted(prompts)}")
    return prompts[name] or None


class SentenceEmbedder(nn.Sequential):
    """An ordered stack of modules whose last output is `sentence_embedding`.

    `prompts` are named prefixes (e.g. {"query": "query: "}) saved with the model so inference uses
    the prompts training used; `similarity_fn_name` is how embeddings are compared; `truncate_dim`
    (saved with the model) makes `encode` return only the first dimensions (Matryoshka embeddings).
    """

    model_type: ClassVar[str] = "SentenceTransformer"
    """`model_type` of config_sentence_transformers.json: which reference class loads the saved model."""
    input_module_types: ClassVar[tuple[type[nn.Module], ...]] = (Transformer, StaticEmbedding)

    def __init__(self, modules: list[nn.Module], *, prompts: dict[str, str] | None = None,
                 default_prompt_name: str | None = None, similarity_fn_name: SimilarityName = "cosine",
                 truncate_dim: int | None = None) -> None:
        super().__init__(*modules)
        if not isinstance(modules[0], self.input_module_types):
            names = " or ".join(cls.__name__ for cls in self.input_module_types)
            raise TypeError(f"the first module must be a {names} (it tokenizes the texts)")
        self.prompts = {"query": "", "document": ""} | dict(prompts or {})
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {default_prompt_name!r} is not one of the prompts {sorted(self.prompts)}")
        self.default_prompt_name = default_prompt_name
        self.similarity_fn_name = similarity_fn_name
        self.truncate_dim = truncate_dim

    @property
    def input_module(self) -> Transformer | StaticEmbedding:
        """The first module: it tokenizes texts and produces the first features."""
        return self[0]

    @property
    def max_seq_length(self) -> int | float:
        return self.input_module.max_seq_length

    @property
    def embedding_dimension(self) -> int:
        """Size of `sentence_embedding`: that of the last module that sets it."""
        for module in reversed(self):
            if isinstance(module, (Dense, Pooling)):
                return module.embedding_dimension
        return self.input_module.embedding_dimension

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def input_module_for(self, task: str | None) -> nn.Module:
        """The module that tokenizes texts of `task` (query, document, ...): the first one, unless a router decides."""
        return self.input_module

    def tokenize(self, texts: list[str], prompt: str | None = None, task: str | None = None) -> dict[str, Tensor]:
        """Texts -> input features. `task` picks the route of a model with a Router; others ignore it, as the
        reference does, so that one collator serves every model."""
        return self.input_module_for(task).tokenize(texts, prompt)

    def resolve_prompt(self, prompt_name: str | None = None, prompt: str | None = None) -> str | None:
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt_name, prompt)

    @torch.inference_mode()
    def encode(self, texts: list[str], *, batch_size: int = 32, prompt_name: str | None = None,
               prompt: str | None = None, task: str | None = None) -> Tensor:
        """Embed `texts` -> float32 tensor (len(texts), dim) on the CPU, in the input order; dim is `truncate_dim` if set
        (the leading dimensions, not re-normalised, as the reference does). `task` as in `tokenize`.
        """
        embeddings = torch.empty((len(texts), self.embedding_dimension), dtype=torch.float32)
        for rows, batch in self.embed_batches(texts, batch_size, self.resolve_prompt(prompt_name, prompt), task):
            embeddings[rows] = batch.float().cpu()
        return embeddings[:, :self.truncate_dim] if self.truncate_dim else embeddings

    def embed_batches(self, texts: list[str], batch_size: int, prompt: str | None, task: str | None = None,
                      **forward_kwargs) -> Iterator[tuple[list[int], Tensor]]:
        """(positions in `texts`, `sentence_embedding` of those texts) per batch, in eval mode; call it under
        `torch.inference_mode()`.

        Texts are processed by decreasing token count, so each batch holds texts of nearly the same length: less
        padding than ordering by characters (about 20% fewer padded tokens on MS MARCO passages), for the cost
        of one extra tokenizer pass.
        """
        was_training = self.training
        self.eval()
        token_counts = self.input_module_for(task).token_counts(texts, prompt) if texts else []
        order = sorted(range(len(texts)), key=lambda index: -token_counts[index])
        try:
            for start in range(0, len(texts), batch_size):
                batch = order[start:start + batch_size]
                features = self.tokenize([texts[index] for index in batch], prompt, task)
                features = {key: value.to(self.device) if isinstance(value, Tensor) else value
                            for key, value in features.items()}
                yield batch, self(features, **forward_kwargs)["sentence_embedding"]
        finally:
            self.train(was_training)

    def embed_columns(self, columns: list[dict[str, Tensor]]) -> list[Tensor]:
        """`sentence_embedding` of each tokenized column (e.g. anchors, positives) of a batch.

        A model that runs batches unpadded (`Transformer.packing`) takes all columns in one forward pass:
        one set of operator launches and larger matrix products instead of one per column (about 4% faster
        for MNRL pairs on CPU); every row's embedding is the same either way.
        """
        if len(columns) < 2 or not self._merges(columns):
            return [self(column)["sentence_embedding"] for column in columns]
        width = max(column["attention_mask"].size(1) for column in columns)
        merged = {key: torch.cat([column[key] if column[key].ndim == 1 else
                                  F.pad(column[key], (0, width - column[key].size(1))) for column in columns])
                  for key in columns[0]}
        embeddings = self(merged)["sentence_embedding"]
        return list(embeddings.split([len(column["attention_mask"]) for column in columns]))

    def _merges(self, columns: list[dict[str, Tensor]]) -> bool:
        """Columns merge when the encoder packs them and they hold the same tensor features (no per-column route)."""
        transformer = self.input_module
        return (isinstance(transformer, Transformer) and transformer.packing and bool(transformer.length_chunking)
                and transformer.length_chunking.runs_on(columns[0]["attention_mask"].device)
                and all(column.keys() == columns[0].keys() and "attention_mask" in column
                        and all(isinstance(value, Tensor) for value in column.values()) for column in columns))

    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        """(n, d) x (m, d) -> (n, m) scores with the model's similarity function."""
        return MATRIX[self.similarity_fn_name](a, b)

    def similarity_pairwise(self, a: Tensor, b: Tensor) -> Tensor:
        """(n, d) x (n, d) -> (n,) scores of each row pair."""
        return PAIRWISE[self.similarity_fn_name](a, b)
