"""A second, frozen model that a loss runs beside the model being trained: GISTEmbed's guide, a distillation teacher.

It embeds the batch the trainer tokenized for the student. When its tokenizer differs from the
student's (another vocabulary, or a shorter length limit), the texts are decoded from the student's
token ids and tokenized again for it: the collated batch carries token ids, not the raw texts.
"""

import torch
from torch import Tensor, nn

from embedtrain.errors import ModelLoadError, RecipeError
from embedtrain.modules import Transformer


class FrozenEncoder(nn.Module):
    """A loaded model in evaluation mode (no dropout), without gradients, whatever mode the training module is put in.

    Not saved with the trained model; its parameters are frozen, so the optimizer never sees them.
    """

    def __init__(self, model: nn.Module, must_retokenize: bool, student_tokenizer) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.must_retokenize = must_retokenize
        self.student_tokenizer = student_tokenizer

    @classmethod
    def load(cls, name: str, student: nn.Module, key: str) -> "FrozenEncoder":
        """Load `name` (hub id, sentence-transformers folder or plain checkpoint) to run beside `student`;
        `key` is the loss parameter that names it, for errors."""
        from embedtrain.models.io import load_model

        try:
            model = load_model(name)
        except ModelLoadError as error:  # name the loss parameter too: the model path alone may not say which one
            raise ModelLoadError(f"{key} {name!r}: {error}") from error
        if not isinstance(student.input_module, Transformer) or not isinstance(model.input_module, Transformer):
            raise RecipeError(f"{key} {name!r}: both the model being trained and the {key} must be transformer models "
                              f"(with Hugging Face tokenizers), so that the {key} can read the student's batches")
        student_tokenizer, own_tokenizer = student.input_module.tokenizer, model.input_module.tokenizer
        must_retokenize = (student_tokenizer.get_vocab() != own_tokenizer.get_vocab()
                           or model.input_module.max_seq_length < student.input_module.max_seq_length)
        return cls(model, must_retokenize, student_tokenizer)

    @property
    def embedding_dimension(self) -> int:
        return self.model.embedding_dimension

    def train(self, mode: bool = True) -> "FrozenEncoder":
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def embed(self, features: dict[str, Tensor]) -> Tensor:
        """Sentence embeddings (batch, dim) of one tokenized column, re-tokenized for this model when needed."""
        if self.must_retokenize:
            texts = self.student_tokenizer.batch_decode(features["input_ids"], skip_special_tokens=True)
            device = features["input_ids"].device
            features = {key: value.to(device) for key, value in self.model.tokenize(texts).items()}
        return self.model(dict(features))["sentence_embedding"]
