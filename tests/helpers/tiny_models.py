"""The tiny random BERT every fast test uses (2 layers, hidden 32) and its locally written vocabulary.

Nothing is downloaded: the vocabulary is written here and the weights are random (seeded).
"""

from pathlib import Path

import torch

WORDS = (
    "a an the is are was on in at of to and with for by from man woman child dog cat bird horse car bus train "
    "plays playing play eats eating eat runs running run sits sitting sit rides riding ride reads reading read "
    "guitar piano ball food grass park street road book table chair kitchen beach river water sun rain snow "
    "red blue green big small young old happy sad fast slow two three people person group street city "
    "what who where when how why question answer query document positive negative sentence text weather today "
    "sunny outside lovely it so very not no yes this that there here some many one"
).split()


def build_vocab() -> list[str]:
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    punctuation = list(".,!?'-:;\"()")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + punctuation + letters + [f"##{c}" for c in letters]
    return tokens + sorted(set(WORDS) - set(tokens))


TINY_HIDDEN = 32
"""The width of the tiny BERT's embeddings."""
TINY_MAX_LENGTH = 64
"""The tiny BERT's position embeddings: its longest input, in tokens."""


def make_tiny_checkpoint(directory: Path, seed: int = 0, dropout: float = 0.0, masked_lm: bool = False) -> Path:
    """Write a random 2-layer BERT (hidden 32) and its tokenizer as a plain Hugging Face checkpoint; with
    `masked_lm`, a BertForMaskedLM (the SPLADE backbone: its head scores every vocabulary id)."""
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate(build_vocab())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=TINY_MAX_LENGTH)
    config = BertConfig(vocab_size=len(build_vocab()), hidden_size=TINY_HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=TINY_MAX_LENGTH, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    torch.manual_seed(seed)
    (BertForMaskedLM if masked_lm else BertModel)(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


DECODER_EOS = "<|endoftext|>"


def make_tiny_decoder_checkpoint(directory: Path, seed: int = 0, shape: dict | None = None) -> Path:
    """Write a random 2-layer Qwen3 decoder (hidden 32) and a word-level tokenizer shaped as Qwen3-Embedding's:
    it appends the EOS token to every text (what last-token pooling reads) and pads on the left. `shape`: Qwen3Config
    values replacing the tiny ones (the benchmarks' full-size decoder; words outside the small vocabulary are [UNK],
    one token per word)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    directory.mkdir(parents=True, exist_ok=True)
    words = [DECODER_EOS, "[UNK]"] + sorted(set(WORDS) | set(build_vocab()[5:]))
    vocab = {word: index for index, word in enumerate(words)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single=f"$A {DECODER_EOS}",
                                                           special_tokens=[(DECODER_EOS, vocab[DECODER_EOS])])
    config = Qwen3Config(**{"vocab_size": len(words), "hidden_size": TINY_HIDDEN, "intermediate_size": 64,
                            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 16,
                            "max_position_embeddings": TINY_MAX_LENGTH} | (shape or {}),
                         eos_token_id=vocab[DECODER_EOS], pad_token_id=vocab[DECODER_EOS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=DECODER_EOS, pad_token=DECODER_EOS,
                                        unk_token="[UNK]", padding_side="left",
                                        model_max_length=min(config.max_position_embeddings, 512))
    torch.manual_seed(seed)
    Qwen3Model(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


QWEN3_EMBEDDING_QUERY_PROMPT = ("Instruct: Given a web search query, retrieve relevant passages that answer the "
                                "query\nQuery:")
"""Qwen3-Embedding's own query prompt (its config_sentence_transformers.json); documents have none."""


def make_tiny_qwen3_embedding(directory: Path, seed: int = 0, shape: dict | None = None) -> Path:
    """The tiny random decoder saved as Qwen/Qwen3-Embedding-* are on the hub: a sentence-transformers model with
    last-token pooling and normalisation, the tokenizer appending EOS and padding on the left, and the model's query
    and (empty) document prompts. What the test mirror maps a Qwen3-Embedding hub id to."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    checkpoint = make_tiny_decoder_checkpoint(directory.with_name(directory.name + "-checkpoint"), seed, shape)
    transformer = Transformer(str(checkpoint))
    hidden = (shape or {}).get("hidden_size", TINY_HIDDEN)
    model = SentenceTransformer(modules=[transformer, Pooling(hidden, "lasttoken"), Normalize()], device="cpu",
                                prompts={"query": QWEN3_EMBEDDING_QUERY_PROMPT, "document": ""},
                                similarity_fn_name="cosine")
    model.save(str(directory))
    return directory
