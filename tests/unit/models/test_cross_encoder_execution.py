"""A cross-encoder's batches run without their padding (packed for BERT classifiers, in length chunks for the
others) and give the padded computation's logits and gradients (rel 1e-5): the second segment keeps its token type
ids, and the head still reads each pair's [CLS] through the pooler."""

import pytest
import torch
from helpers.tiny_cross_encoders import UNEVEN_PAIRS, make_tiny_classifier

from embedtrain.models.cross_encoder_io import load_cross_encoder
from embedtrain.modules.length_chunks import LengthChunking

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=[("bert", 1), ("bert", 3), ("electra", 1)], ids=["bert-1", "bert-3", "electra-1"])
def classifier(request, tmp_path_factory):
    architecture, num_labels = request.param
    return make_tiny_classifier(tmp_path_factory.mktemp(f"{architecture}-{num_labels}"), num_labels,
                                architecture=architecture)


def logits_and_gradients(model, pairs, chunking: LengthChunking | None, packing: bool | None = None):
    model.zero_grad(set_to_none=True)
    model.length_chunking = chunking
    if packing is not None:
        model.packing = packing
    logits = model.score_pairs(pairs)
    # Weights per output, so that every logit takes part in the gradient with its own sign and size.
    (logits * torch.linspace(-1.0, 2.0, logits.numel()).view_as(logits)).sum().backward()
    return logits.detach(), {name: parameter.grad.clone() for name, parameter in model.named_parameters()
                             if parameter.grad is not None}


def test_length_aware_execution_equals_the_padded_one(classifier):
    model = load_cross_encoder(classifier)
    model.train()  # dropout is 0: training mode must not change the result
    padded, padded_grads = logits_and_gradients(model, UNEVEN_PAIRS, None)
    chunking = LengthChunking(chunk_cost=1)  # several chunks even for this small batch
    unpadded, grads = logits_and_gradients(model, UNEVEN_PAIRS, chunking)
    torch.testing.assert_close(unpadded, padded, rtol=1e-5, atol=1e-6)
    assert grads.keys() == padded_grads.keys()
    # Relative to the largest gradient: float sums in another order differ by ~1e-7 of the values they add up.
    largest = max(grad.abs().max().item() for grad in padded_grads.values())
    for name, grad in grads.items():
        torch.testing.assert_close(grad, padded_grads[name], rtol=1e-5, atol=1e-5 * largest, msg=name)
    # The scores differ from pair to pair by far more than the tolerance: the comparison means something.
    assert float(padded.max() - padded.min()) > 0.1


def test_bert_classifiers_run_packed_and_others_in_chunks(classifier):
    model = load_cross_encoder(classifier)
    assert model.packing == (model.model.config.model_type == "bert")


def test_packed_and_chunked_bert_agree(tmp_path):
    """The same BERT classifier through both unpadded paths (chunks being what other encoders use)."""
    model = load_cross_encoder(make_tiny_classifier(tmp_path / "bert", 2))
    chunking = LengthChunking(chunk_cost=1)
    packed, _ = logits_and_gradients(model, UNEVEN_PAIRS, chunking, packing=True)
    chunked, _ = logits_and_gradients(model, UNEVEN_PAIRS, chunking, packing=False)
    torch.testing.assert_close(packed, chunked, rtol=1e-5, atol=1e-6)


def test_the_second_segment_keeps_its_token_type(tmp_path):
    """Packed execution passes token_type_ids on: scoring the pair with every token typed 0 gives other logits."""
    model = load_cross_encoder(make_tiny_classifier(tmp_path / "bert", 1))
    model.eval()
    features = model.tokenize(UNEVEN_PAIRS)
    assert bool((features["token_type_ids"] == 1).any())
    with torch.no_grad():
        typed = model(dict(features))
        untyped = model(dict(features) | {"token_type_ids": torch.zeros_like(features["token_type_ids"])})
    assert not torch.allclose(typed, untyped, atol=1e-4)
