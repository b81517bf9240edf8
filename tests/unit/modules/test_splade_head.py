"""The fused SPLADE head gives the embeddings and gradients of the plain computation (MLM logits for every token,
activation, pooling), without ever holding the (tokens x vocabulary) logits."""

import pytest
import torch
import torch.utils._pytree as pytree
from helpers.asserts import assert_same_gradient_values, gradients
from helpers.sparse_models import make_tiny_mlm_checkpoint
from torch.utils._python_dispatch import TorchDispatchMode

from embedtrain.modules import MLMTransformer, SpladePooling, splade_head
from embedtrain.modules.splade_head import splade_pool

STRATEGIES = ["max", "sum"]
ACTIVATIONS = ["relu", "log1p_relu"]


def plain_pool(hidden, weight, bias, rows, num_texts, strategy, activation):
    weights = torch.log1p(torch.relu(hidden @ weight.t() + bias))
    if activation == "log1p_relu":
        weights = torch.log1p(weights)
    pooled = weights.new_zeros(num_texts, weight.size(0))
    if strategy == "max":
        return pooled.scatter_reduce(0, rows.unsqueeze(1).expand_as(weights), weights, "amax")
    return pooled.index_add(0, rows, weights)


def pooled_and_gradients(pool, inputs, upstream):
    leaves = [tensor.detach().clone().requires_grad_(True) for tensor in inputs[:3]]
    pooled = pool(*leaves, *inputs[3:])
    (pooled * upstream).sum().backward()
    return pooled.detach(), [leaf.grad for leaf in leaves]


@pytest.fixture
def small_slices(monkeypatch):
    """Vocabulary slices of a few entries, so that every test crosses slice boundaries."""
    monkeypatch.setattr(splade_head, "TOKENS_TIMES_SLICE", 64)


def random_inputs(strategy: str, activation: str, bias_shift: float = -1.0) -> tuple:
    """23 tokens of 5 texts (interleaved, not contiguous; text 3 without tokens: its vector is 0) over a vocabulary
    of 37, in float64; `bias_shift` -1: many entries never positive, 3: almost every entry positive (an MLM head at
    the start of SPLADE training)."""
    generator = torch.Generator().manual_seed(0)
    tokens, hidden_size, vocabulary, num_texts = 23, 8, 37, 5
    hidden = torch.randn(tokens, hidden_size, generator=generator, dtype=torch.float64)
    weight = torch.randn(vocabulary, hidden_size, generator=generator, dtype=torch.float64)
    bias = torch.randn(vocabulary, generator=generator, dtype=torch.float64) + bias_shift
    rows = torch.tensor([0, 1, 2, 4] * 5 + [0, 1, 4])
    return hidden, weight, bias, rows, num_texts, strategy, activation


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias_shift", [-1.0, 3.0], ids=["few-active", "most-active"])
def test_same_pooled_vectors_and_gradients_as_the_plain_computation(strategy, activation, bias_shift, small_slices):
    inputs = random_inputs(strategy, activation, bias_shift)
    num_texts, vocabulary = inputs[4], inputs[1].size(0)
    upstream = torch.randn(num_texts, vocabulary, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    expected, expected_grads = pooled_and_gradients(plain_pool, inputs, upstream)
    actual, actual_grads = pooled_and_gradients(splade_pool, inputs, upstream)

    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    assert actual[3].abs().sum() == 0 and (expected > 0).sum() > (10 if bias_shift < 0 else 0.9 * 4 * vocabulary)
    for name, got, want in zip(["hidden", "weight", "bias"], actual_grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_texts_of_very_different_lengths_are_pooled_in_groups_with_the_same_results(activation, small_slices,
                                                                                     monkeypatch):
    monkeypatch.setattr(splade_head, "GROUP_COST", 0)  # a group per length
    lengths = [1, 30, 2, 25, 0, 3]
    assert len(splade_head._length_groups(lengths)) == 5
    generator = torch.Generator().manual_seed(2)
    rows = torch.arange(len(lengths)).repeat_interleave(torch.tensor(lengths))
    hidden = torch.randn(rows.numel(), 8, generator=generator, dtype=torch.float64)
    weight = torch.randn(37, 8, generator=generator, dtype=torch.float64)
    bias = torch.randn(37, generator=generator, dtype=torch.float64)
    upstream = torch.randn(len(lengths), 37, generator=generator, dtype=torch.float64)
    inputs = (hidden, weight, bias, rows, len(lengths), "max", activation)

    expected, expected_grads = pooled_and_gradients(plain_pool, inputs, upstream)
    actual, actual_grads = pooled_and_gradients(splade_pool, inputs, upstream)

    torch.testing.assert_close(actual, expected, rtol=1e-12, atol=1e-12)
    for name, got, want in zip(["hidden", "weight", "bias"], actual_grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12, msg=f"gradient of {name}")


class LargestTensor(TorchDispatchMode):
    """The most elements of any tensor an operator returns while the mode is on."""

    def __init__(self):
        super().__init__()
        self.elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for tensor in pytree.tree_leaves(result):
            if isinstance(tensor, torch.Tensor):
                self.elements = max(self.elements, tensor._nnz() if tensor.is_sparse else tensor.numel())
        return result


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_tensor_of_tokens_times_vocabulary_in_the_forward_or_backward(strategy, small_slices):
    """Nothing of (tokens x vocabulary) elements, nor (active entries x hidden) while almost every entry is active:
    at most the pooled vectors' (texts x vocabulary), the decoder's (vocabulary x hidden) gradient, and blocks."""
    hidden, weight, bias, *rest = random_inputs(strategy, "relu", bias_shift=3.0)
    leaves = [tensor.clone().requires_grad_(True) for tensor in (hidden, weight, bias)]
    with LargestTensor() as largest:
        splade_pool(*leaves, *rest).pow(2).sum().backward()
    (tokens, hidden_size), (vocabulary, num_texts) = hidden.shape, (weight.size(0), rest[1])
    assert largest.elements <= max(num_texts * vocabulary, vocabulary * (hidden_size + 1), 2 * tokens * hidden_size)
    assert largest.elements < tokens * vocabulary


def test_without_bias(small_slices):
    generator = torch.Generator().manual_seed(1)
    hidden, weight = torch.randn(9, 4, generator=generator), torch.randn(11, 4, generator=generator)
    rows = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2])
    pooled = splade_pool(hidden, weight, None, rows, 3, "max", "relu")
    torch.testing.assert_close(pooled, plain_pool(hidden, weight, torch.zeros(11), rows, 3, "max", "relu"))


TEXTS = ["the cat sat on the mat", "a dog", "what is the capital of france and why", "the the the"]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("packed", [True, False], ids=["packed", "padded"])
def test_mlm_transformer_and_pooling_match_the_model_logits_path(tmp_path, monkeypatch, strategy, activation, packed):
    checkpoint = make_tiny_mlm_checkpoint(tmp_path / "mlm")
    results = []
    for fused in (True, False):
        if not fused:  # the plain path: the model's own MLM logits, pooled by SpladePooling
            monkeypatch.setattr(MLMTransformer, "decoder", property(lambda self: None))
        transformer, pooling = MLMTransformer.from_pretrained(checkpoint), SpladePooling(strategy, activation)
        if not packed:
            transformer.length_chunking = None
        features = transformer.tokenize(TEXTS)
        embeddings = pooling(transformer(features))["sentence_embedding"]
        assert ("decoder_inputs" in features) == fused
        embeddings.pow(2).sum().backward()
        results.append((embeddings.detach(), gradients(transformer)))
    (fused_embeddings, fused_grads), (plain_embeddings, plain_grads) = results
    torch.testing.assert_close(fused_embeddings, plain_embeddings, rtol=1e-5, atol=1e-6)
    assert_same_gradient_values(fused_grads, plain_grads)
