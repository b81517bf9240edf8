"""Sparse MSE and translation evaluators, over parallel (source, target) rows as multilingual distillation uses them:
the dense `mse` and `translation` evaluators on sparse embeddings, plus the reference's sparsity statistics
(`active_dims`, `sparsity_ratio`, see sparse_evaluators.py) of the embeddings the model computes:

- `sparse_mse`: of the targets (the teacher's embeddings of the sources are not counted, as in the reference);
- `sparse_translation`: the mean of the sources' and the targets' (as the reference averages its two calls).

The teacher of `sparse_mse` loads as the reference's `SparseEncoder(teacher)` would: a saved sparse model as saved, a
masked-LM checkpoint as SPLADE. Any other model is refused: the reference would wrap it in CSR with an untrained
autoencoder, whose embeddings teach nothing.
"""

from typing import Literal

from pydantic import Field

from embedtrain.errors import RecipeError
from embedtrain.evaluation.mse_evaluator import MSEEvaluator, MSEParams
from embedtrain.evaluation.registry import register_evaluator
from embedtrain.evaluation.sparse_evaluators import SparsityPerCall
from embedtrain.evaluation.sparse_retrieval_evaluators import NO_TRUNCATION
from embedtrain.evaluation.translation_evaluator import TranslationEvaluator, TranslationParams
from embedtrain.models.build_sparse import build_sparse_model, is_masked_lm
from embedtrain.models.config import ModelConfig
from embedtrain.models.embedder import SentenceEmbedder
from embedtrain.models.form import model_form
from embedtrain.models.io import load_model, resolve_model_path


class SparseMSEParams(MSEParams):
    type: Literal["sparse_mse"]
    truncate_dim: None = NO_TRUNCATION
    teacher: str = Field(description="the teacher model: a local folder or hub id of a saved sparse model, or of a "
                                     "masked-LM checkpoint (built as SPLADE)")


@register_evaluator(SparseMSEParams)
class SparseMSEEvaluator(SparsityPerCall, MSEEvaluator):
    """`negative_mse` between a sparse teacher's embeddings of the sources and the model's of the targets, plus
    `active_dims` / `sparsity_ratio` of the targets."""

    sides = ("",)

    def load_teacher(self) -> SentenceEmbedder:
        params = self.params
        path = resolve_model_path(params.teacher, params.teacher_revision)
        form = model_form(str(path))
        if form.saved_kind == "sparse":
            return load_model(path)
        if form.saved_kind is None and is_masked_lm(path, trust_remote_code=False):
            return build_sparse_model(ModelConfig(base=str(path), kind="sparse"))
        what = {"dense": "a saved dense model", "cross_encoder": "a cross-encoder (a reranker)"}.get(
            form.saved_kind, "a plain checkpoint that is not a masked-LM one (*ForMaskedLM)")
        raise RecipeError(f"evaluator {params.name}: the teacher {params.teacher!r} is {what}; the teacher of "
                          f"sparse_mse gives sparse embeddings: a saved sparse model, or a masked-LM checkpoint (built "
                          f"as SPLADE). For a dense teacher and student, use mse")


class SparseTranslationParams(TranslationParams):
    type: Literal["sparse_translation"]
    truncate_dim: None = NO_TRUNCATION


@register_evaluator(SparseTranslationParams)
class SparseTranslationEvaluator(SparsityPerCall, TranslationEvaluator):
    """src2trg / trg2src / mean accuracy of cosine nearest-neighbour matching (as the reference's, also for sparse
    models), plus `active_dims` / `sparsity_ratio`: the mean of the sources' and the targets' (two calls, one side)."""

    sides = ("", "")
