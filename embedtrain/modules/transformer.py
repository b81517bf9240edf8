from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from embedtrain.modules.files import read_json, write_json
from embedtrain.modules.length_chunks import LengthChunking, run_in_chunks
from embedtrain.modules.lora import load_adapter, save_adapter
from embedtrain.modules.packed_attention import enable_packing, run_packed, unpack

CONFIG_FILE = "sentence_bert_config.json"
LEGACY_CONFIG_FILES = (
    CONFIG_FILE,
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)


def encoder_inputs(features: dict[str, Tensor]) -> dict[str, Tensor]:
    """The features the encoder takes."""
    return {key: features[key] for key in ("input_ids", "attention_mask", "token_type_ids") if key in features}


def saved_settings(directory: Path) -> dict:
    """The legacy `sentence_*_config.json` (max_seq_length, do_lower_case), or {} (v5.4+ layout, plain checkpoint)."""
    return next((read_json(directory / name) for name in LEGACY_CONFIG_FILES if (directory / name).exists()), {})


def default_max_seq_length(tokenizer: PreTrainedTokenizerBase, config) -> int:
    """The tokenizer's limit, capped by the position embeddings (tokenizers often say 'unlimited')."""
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None)]
    return min(limit for limit in limits if limit and limit < 1_000_000)


class Transformer(nn.Module):
    """A Hugging Face encoder (AutoModel) and its tokenizer: texts -> `token_embeddings`.

    Saved in the model's root folder: `config.json`, `model.safetensors`, the tokenizer files and
    `sentence_bert_config.json` with the maximum sequence length (legacy layout).

    `length_chunking` (on unless set to None; an execution setting, not saved) runs each batch without
    padding where the encoder allows it (`packing`: BERT-style encoders, see `packed_attention`) and
    otherwise in length-homogeneous chunks (see `length_chunks`): the same outputs, far less padding. Batches on
    a GPU run padded unless the setting says otherwise (`LengthChunking.on_accelerators`).

    `adapter` (peft's LoraConfig, or None) is the LoRA adapter the encoder carries (see `lora`): then only the
    adapter trains, and the folder holds the adapter (`adapter_config.json`, `adapter_model.safetensors`) in place
    of `config.json` and `model.safetensors`, as sentence-transformers saves and loads it.
    """

    st_type = "sentence_transformers.models.Transformer"
    # Whether a packed forward pass hands its per-token outputs on packed (`packed_token_embeddings`, with
    # `packed_token_rows`, the text of each token) instead of padded `token_embeddings`: for outputs too wide
    # to pad cheaply, and a next module that pools packed tokens.
    packed_outputs = False
    auto_class = AutoModel
    """The Hugging Face auto class that loads the weights (MLMTransformer loads the masked-LM head too)."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_seq_length: int,
                 do_lower_case: bool = False) -> None:
        super().__init__()
        self.auto_model = model
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.do_lower_case = do_lower_case
        self._prompt_lengths: dict[str, int] = {}
        self.length_chunking: LengthChunking | None = LengthChunking()
        self.packing = enable_packing(model)
        self.adapter = None

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, max_seq_length: int | None = None, do_lower_case: bool = False,
                        trust_remote_code: bool = False, attn_implementation: str | None = None,
                        revision: str | None = None, dtype: torch.dtype | None = None) -> "Transformer":
        """`dtype`: the weights' dtype; None keeps the checkpoint's own (transformers' "auto", what the reference
        loads: a bf16 checkpoint stays bf16)."""
        options = {"trust_remote_code": trust_remote_code, "revision": revision}
        config = AutoConfig.from_pretrained(name_or_path, **options)
        model_options = {"attn_implementation": attn_implementation} if attn_implementation else {}
        model = cls.auto_class.from_pretrained(name_or_path, config=config, dtype=dtype or "auto", **options,
                                               **model_options)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **options)
        return cls(model, tokenizer, max_seq_length or default_max_seq_length(tokenizer, config), do_lower_case)

    @classmethod
    def load(cls, directory: Path, *, trust_remote_code: bool = False, attn_implementation: str | None = None,
             max_seq_length: int | None = None, adapter_base: Path | None = None,
             dtype: torch.dtype | None = None) -> "Transformer":
        """Reads the legacy `sentence_*_config.json` (max_seq_length) or the v5.4+ layout (length in the tokenizer config).

        A folder holding an adapter (see `lora`) is loaded as its base model, `adapter_base` (the local folder of
        the model the adapter names), with the adapter injected and the folder's own tokenizer."""
        config = saved_settings(directory)
        module = cls.from_pretrained(
            adapter_base or directory,
            max_seq_length=max_seq_length or config.get("max_seq_length"),
            do_lower_case=config.get("do_lower_case", False),
            trust_remote_code=trust_remote_code,
            attn_implementation=attn_implementation,
            dtype=dtype,
        )
        if adapter_base is not None:
            module.tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=trust_remote_code)
            module.adapter = load_adapter(module.auto_model, directory)
        return module

    @property
    def embedding_dimension(self) -> int:
        return self.auto_model.config.hidden_size

    def __repr__(self) -> str:  # the encoder's layers would drown everything else in the model's repr
        architecture = type(self.auto_model).__name__
        return f"{type(self).__name__}(max_seq_length={self.max_seq_length}, do_lower_case={self.do_lower_case}, architecture={architecture})"

    def _model_texts(self, texts: list[str], prompt: str | None) -> list[str]:
        """The texts as the tokenizer sees them: prompt prepended, lower-cased if the model asks for it."""
        if prompt:
            texts = [prompt + text for text in texts]
        if self.do_lower_case:
            texts = [text.lower() for text in texts]
        return texts

    def tokenize(self, texts: list[str], prompt: str | None = None) -> dict[str, Tensor]:
        """Texts -> padded input tensors; with a prompt, also `prompt_length` for prompt-aware pooling."""
        texts = self._model_texts(texts, prompt)
        features = dict(self.tokenizer(texts, padding=True, truncation="longest_first", max_length=self.max_seq_length,
                                       return_tensors="pt"))
        if prompt:
            features["prompt_length"] = torch.full((len(texts),), self.prompt_length(prompt), dtype=torch.long)
        return features

    def token_counts(self, texts: list[str], prompt: str | None = None) -> list[int]:
        """Tokens each text occupies after truncation, special tokens included (what `tokenize` pads to)."""
        ids = self.tokenizer(self._model_texts(texts, prompt), truncation="longest_first", max_length=self.max_seq_length,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        return [len(row) for row in ids]

    def prompt_length(self, prompt: str) -> int:
        """Tokens the prompt occupies at the start of a text, including a leading special token but not a trailing one."""
        if prompt not in self._prompt_lengths:
            ids = self.tokenizer(prompt, truncation=True, max_length=self.max_seq_length)["input_ids"]
            length = len(ids)
            if ids and ids[-1] in self.tokenizer.all_special_ids:
                length -= 1
            self._prompt_lengths[prompt] = length
        return self._prompt_lengths[prompt]

    def forward(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        inputs = encoder_inputs(features)
        outputs, tokens = self._run(self._token_outputs, inputs, keep_packed=self.packed_outputs)
        if tokens is None:
            features["token_embeddings"] = outputs
        else:
            features["packed_token_embeddings"] = outputs
            features["packed_token_rows"] = tokens // inputs["attention_mask"].size(1)
        return features

    def _run(self, encode: Callable[..., Tensor], inputs: dict[str, Tensor],
             keep_packed: bool = False) -> tuple[Tensor, Tensor | None]:
        """`encode(inputs, **options)`'s per-token outputs, run without padding where `length_chunking`, the batch
        (right-padded, with padding) and its device allow: packed when the encoder qualifies, else in chunks.

        Returns the padded (batch, seq, dim) outputs and None; or, for a packed run with `keep_packed`, the real
        tokens' outputs (tokens, dim) and their flat positions in the padded (batch * seq) layout."""
        mask = inputs.get("attention_mask")
        if not (self.length_chunking and mask is not None and not bool(mask.all())
                and self.tokenizer.padding_side == "right" and self.length_chunking.runs_on(mask.device)):
            return encode(inputs), None
        if not self.packing:
            return run_in_chunks(encode, inputs, self.length_chunking), None
        outputs, tokens = run_packed(encode, inputs, self.length_chunking, self.auto_model.config)
        if keep_packed:
            return outputs, tokens
        return unpack(outputs, tokens, *mask.shape), None

    def _token_outputs(self, inputs: dict[str, Tensor], **options) -> Tensor:
        return self.token_outputs(self.auto_model(**inputs, **options, return_dict=True))

    def token_outputs(self, output) -> Tensor:
        """The per-token tensor this module contributes as `token_embeddings`: the last hidden state."""
        return output.last_hidden_state

    def forward_all_layers(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        """`forward`'s `token_embeddings` (the last hidden state), plus `all_layer_embeddings`: the embedding layer's
        output and every layer's (num_layers + 1), all padded (batch, seq, hidden); run length-aware as `forward`."""
        outputs, _ = self._run(self._all_layer_outputs, encoder_inputs(features))
        *layers, last = outputs.split(self.auto_model.config.hidden_size, dim=-1)
        features["token_embeddings"], features["all_layer_embeddings"] = last, tuple(layers)
        return features

    def _all_layer_outputs(self, inputs: dict[str, Tensor], **options) -> Tensor:
        """Every hidden state, then the last hidden state, side by side along the last dimension: one per-token
        tensor, which the length-aware runners (packing, chunks) handle as they handle `_token_outputs`'. The last
        hidden state gets its own slice: transformers makes it the last hidden_states entry for most models, not all."""
        output = self.auto_model(**inputs, **options, output_hidden_states=True, return_dict=True)
        return torch.cat([*output.hidden_states, output.last_hidden_state], dim=-1)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.adapter is None:
            self.auto_model.save_pretrained(directory)
        else:
            save_adapter(self.auto_model, self.adapter, directory)
        # The v5.4+ reference reads the length from the tokenizer config, the legacy one from sentence_bert_config.json.
        self.tokenizer.model_max_length = self.max_seq_length
        self.tokenizer.save_pretrained(directory)
        write_json(directory / CONFIG_FILE, {"max_seq_length": self.max_seq_length, "do_lower_case": self.do_lower_case})
