"""The cross-encoder: a sequence-classification transformer that scores (text, text) pairs.

Unlike the embedders, it embeds no text on its own: both texts of a pair go through the transformer together (the
second as segment 2), and a classification head turns the pair into `num_labels` logits. Losses call
`score_pairs` (raw logits, with autograd); users and evaluators call `predict` (activation applied, no
gradients) and `rank`.

Read and written in the sentence-transformers layouts by `cross_encoder_io`; built from a recipe by
`cross_encoder_build`. Batches run without their padding (`cross_encoder_execution`).
"""

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from embedtrain.models.cross_encoder_execution import classify, enable_packed_classification
from embedtrain.models.embedder import resolve_prompt
from embedtrain.modules.dense import ACTIVATIONS, Activation
from embedtrain.modules.length_chunks import LengthChunking


def default_activation(num_labels: int) -> Activation:
    """The reference's default: a probability for a single score, the logits themselves for classes."""
    return "sigmoid" if num_labels == 1 else "identity"


class CrossEncoder(nn.Module):
    """`model` (a Hugging Face `*ForSequenceClassification`) and its tokenizer.

    `max_length` caps the tokens of a pair (both texts and the special tokens; the longer text is truncated first);
    `activation` (saved with the model) turns logits into predictions; `prompts` are named prefixes of the first
    text of each pair, saved with the model, with `default_prompt_name` applied by `predict` when no prompt is
    given. `length_chunking` (an execution setting, not saved; None runs batches padded) is as for the embedders.
    """

    model_type: ClassVar[str] = "CrossEncoder"
    """`model_type` of config_sentence_transformers.json: the reference class that loads the saved model."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_length: int,
                 activation: Activation | None = None, *, prompts: dict[str, str] | None = None,
                 default_prompt_name: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.activation_name: Activation = activation or default_activation(model.config.num_labels)
        self.prompts = dict(prompts or {})
        if default_prompt_name is not None and default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {default_prompt_name!r} is not one of the prompts {sorted(self.prompts)}")
        self.default_prompt_name = default_prompt_name
        self.length_chunking: LengthChunking | None = LengthChunking()
        self.packing = enable_packed_classification(model)

    @property
    def num_labels(self) -> int:
        return self.model.config.num_labels

    @property
    def activation(self) -> nn.Module:
        """What `predict` applies to the logits (stateless: not a submodule, so not part of the model's modules)."""
        return ACTIVATIONS[self.activation_name][1]()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def __repr__(self) -> str:  # the encoder's layers would drown everything else
        return (f"CrossEncoder(architecture={type(self.model).__name__}, num_labels={self.num_labels}, "
                f"max_length={self.max_length}, activation={self.activation_name})")

    def resolve_prompt(self, prompt_name: str | None = None, prompt: str | None = None) -> str | None:
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt_name, prompt)

    def tokenize(self, pairs: Sequence[Sequence[str]]) -> dict[str, Tensor]:
        """Pairs -> padded input tensors, as the reference tokenizes them: both texts in one sequence
        ([CLS] first [SEP] second [SEP] for BERT), the longer text truncated first to `max_length` tokens."""
        for index, pair in enumerate(pairs):
            if isinstance(pair, str) or len(pair) != 2:
                raise ValueError(f"pair {index} is {pair!r}; a cross-encoder scores pairs of two texts")
        return dict(self.tokenizer([pair[0] for pair in pairs], [pair[1] for pair in pairs], padding=True,
                                   truncation="longest_first", max_length=self.max_length, return_tensors="pt"))

    def forward(self, features: dict[str, Tensor]) -> Tensor:
        """Tokenized pairs -> (batch, num_labels) logits."""
        return classify(self.model, features, self.length_chunking, self.packing, self.tokenizer.padding_side)

    def score_pairs(self, pairs: Sequence[Sequence[str]]) -> Tensor:
        """Raw logits (len(pairs), num_labels) of the pairs as given (prompts already in their first texts), with
        autograd, in the module's current train/eval mode: what losses call."""
        features = {key: value.to(self.device) for key, value in self.tokenize(pairs).items()}
        return self(features)

    @torch.inference_mode()
    def predict(self, pairs: Sequence[Sequence[str]], batch_size: int = 32, apply_activation: bool = True, *,
                prompt_name: str | None = None, prompt: str | None = None) -> Tensor:
        """Scores of `pairs` in eval mode: a float32 CPU tensor (n,) for one label, else (n, num_labels); the
        activation applied unless `apply_activation` is False. The prompt (`prompt`, else `prompt_name`'s, else the
        default prompt's) is prepended to each first text. Pairs run longest first, so a batch holds pairs of
        near-equal length."""
        if batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size}")
        prefix = self.resolve_prompt(prompt_name, prompt) or ""
        pairs = [(prefix + first, second) for first, second in pairs]
        order = sorted(range(len(pairs)), key=lambda index: -(len(pairs[index][0]) + len(pairs[index][1])))
        scores = torch.empty((len(pairs), self.num_labels), dtype=torch.float32)
        was_training = self.training
        self.eval()
        try:
            for start in range(0, len(pairs), batch_size):
                rows = order[start:start + batch_size]
                # As the reference: upcast before the activation, so that low-precision logits do not tie.
                logits = self.score_pairs([pairs[row] for row in rows]).float()
                scores[rows] = (self.activation(logits) if apply_activation else logits).cpu()
        finally:
            self.train(was_training)
        return scores.squeeze(1) if self.num_labels == 1 else scores

    def rank(self, query: str, documents: list[str], top_k: int | None = None, return_documents: bool = False,
             batch_size: int = 32, *, prompt_name: str | None = None, prompt: str | None = None) -> list[dict]:
        """`documents` by descending score for `query`: [{"corpus_id": index, "score": score, ("text": document)}],
        the first `top_k` of them (all when None). Only for a single-score model (num_labels 1)."""
        if self.num_labels != 1:
            raise ValueError(f"rank needs a model with one score per pair; this one has num_labels {self.num_labels} "
                             f"(use predict)")
        scores = self.predict([(query, document) for document in documents], batch_size, prompt_name=prompt_name,
                              prompt=prompt).tolist()
        results = [{"corpus_id": index, "score": score} | ({"text": documents[index]} if return_documents else {})
                   for index, score in enumerate(scores)]
        return sorted(results, key=lambda result: result["score"], reverse=True)[:top_k]
