"""Sparse model folders are interchangeable with sentence-transformers' SparseEncoder (ST 6.2 is the oracle).

Proven here, for SPLADE, inference-free SPLADE (a Router) and CSR (a sparse autoencoder on a dense encoder):
- a model embedtrain builds and saves loads in ST and encodes queries and documents exactly as embedtrain does
  (max |delta| < 1e-5), and the files are the legacy layout (legacy type strings, model_type SparseEncoder);
- a model ST builds and saves (its v5.4+ layout) loads in embedtrain with the same embeddings;
- `encode` returns sparse tensors, honours max_active_dims like ST, and decode/sparsity agree with ST.
"""

import json
from pathlib import Path

import pytest
import torch
from helpers.asserts import TOLERANCE
from helpers.texts import TEXTS
from sentence_transformers import SparseEncoder
from sentence_transformers.base.modules import Router as STRouter
from sentence_transformers.base.modules import Transformer as STTransformer
from sentence_transformers.sentence_transformer.modules import Pooling as STPooling
from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder
from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding as STSparseStaticEmbedding
from sentence_transformers.sparse_encoder.modules import SpladePooling as STSpladePooling

from embedtrain.models import load_model, save_model
from embedtrain.models.sparse_embedder import SparseEmbedder
from embedtrain.modules import (
    MLMTransformer,
    Pooling,
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial values in every parameter, so that biases and static weights are really exercised."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.rand(parameter.shape, generator=generator) * 2 - 0.5)
    return module


def splade(mlm: Path, **pooling) -> SparseEmbedder:
    return SparseEmbedder([MLMTransformer.from_pretrained(mlm), SpladePooling(**pooling)])


def inference_free_splade(mlm: Path) -> SparseEmbedder:
    document = [MLMTransformer.from_pretrained(mlm), SpladePooling()]
    query = randomize(SparseStaticEmbedding(document[0].tokenizer))
    return SparseEmbedder([Router({"query": [query], "document": document})], prompts={"query": "query: "})


def csr(checkpoint: Path) -> SparseEmbedder:
    transformer = Transformer.from_pretrained(checkpoint)
    autoencoder = SparseAutoEncoder(32, hidden_dim=128, k=8, k_aux=16)
    with torch.no_grad():
        randomize(autoencoder).encoder.weight.mul_(0.3)
    return SparseEmbedder([transformer, Pooling(32, ("mean",)), autoencoder])


ARCHITECTURES = {
    "splade": lambda mlm, dense: splade(mlm),
    "splade-sum-log1p_relu": lambda mlm, dense: splade(mlm, pooling_strategy="sum", activation_function="log1p_relu"),
    "inference-free-splade": lambda mlm, dense: inference_free_splade(mlm),
    "csr": lambda mlm, dense: csr(dense),
}


def assert_same(expected: torch.Tensor, actual: torch.Tensor) -> float:
    expected = expected.to_dense() if expected.is_sparse else expected
    actual = actual.to_dense() if actual.is_sparse else actual
    assert expected.shape == actual.shape
    difference = (expected.float() - actual.float()).abs().max().item()
    assert difference < TOLERANCE, f"max |delta| = {difference}"
    return difference


def assert_same_encodings(st: SparseEncoder, ours: SparseEmbedder) -> None:
    assert ours.encode_query(TEXTS).is_sparse
    assert_same(st.encode_query(TEXTS), ours.encode_query(TEXTS))
    assert_same(st.encode_document(TEXTS), ours.encode_document(TEXTS))
    assert_same(st.encode(TEXTS), ours.encode(TEXTS))


@pytest.mark.parametrize("architecture", ARCHITECTURES, ids=ARCHITECTURES.keys())
def test_embedtrain_saved_sparse_model_loads_in_sentence_transformers_with_identical_embeddings(
        architecture, tiny_mlm_checkpoint, tiny_checkpoint, tmp_path):
    ours = ARCHITECTURES[architecture](tiny_mlm_checkpoint, tiny_checkpoint)
    save_model(ours, tmp_path / "model")

    st = SparseEncoder(str(tmp_path / "model"), device="cpu")

    assert_same_encodings(st, ours)
    settings = json.loads((tmp_path / "model" / "config_sentence_transformers.json").read_text())
    assert settings["model_type"] == "SparseEncoder" and settings["similarity_fn_name"] == "dot"
    types = [entry["type"] for entry in json.loads((tmp_path / "model" / "modules.json").read_text())]
    assert all(type_string.startswith("sentence_transformers.") for type_string in types)
    assert not any(".modules." in type_string for type_string in types)  # legacy type strings only
    reloaded = load_model(tmp_path / "model")
    assert_same(ours.encode(TEXTS), reloaded.encode(TEXTS))


def test_inference_free_splade_writes_the_legacy_router_layout(tiny_mlm_checkpoint, tmp_path):
    save_model(inference_free_splade(tiny_mlm_checkpoint), tmp_path / "model")

    config = json.loads((tmp_path / "model" / "router_config.json").read_text())
    assert config == {
        "types": {"query_0_SparseStaticEmbedding": "sentence_transformers.sparse_encoder.models.SparseStaticEmbedding",
                  "document_0_MLMTransformer": "sentence_transformers.sparse_encoder.models.MLMTransformer",
                  "document_1_SpladePooling": "sentence_transformers.sparse_encoder.models.SpladePooling"},
        "structure": {"query": ["query_0_SparseStaticEmbedding"],
                      "document": ["document_0_MLMTransformer", "document_1_SpladePooling"]},
        "parameters": {"default_route": "document", "allow_empty_key": True}}
    assert json.loads((tmp_path / "model" / "modules.json").read_text()) == [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Router"}]


def st_splade(mlm: Path) -> SparseEncoder:
    return SparseEncoder(str(mlm), device="cpu")  # an MLM checkpoint: ST adds max SpladePooling


def st_inference_free_splade(mlm: Path) -> SparseEncoder:
    document = [STTransformer(str(mlm), transformer_task="fill-mask"), STSpladePooling("max")]
    query = randomize(STSparseStaticEmbedding(document[0].tokenizer), seed=1)
    return SparseEncoder(modules=[STRouter.for_query_document([query], document)], device="cpu")


def st_csr(checkpoint: Path) -> SparseEncoder:
    transformer = STTransformer(str(checkpoint))
    autoencoder = STSparseAutoEncoder(32, hidden_dim=128, k=8, k_aux=16)
    with torch.no_grad():
        randomize(autoencoder, seed=2).encoder.weight.mul_(0.3)
    return SparseEncoder(modules=[transformer, STPooling(32, "mean"), autoencoder], device="cpu")


ST_ARCHITECTURES = {
    "splade": lambda mlm, dense: st_splade(mlm),
    "inference-free-splade": lambda mlm, dense: st_inference_free_splade(mlm),
    "csr": lambda mlm, dense: st_csr(dense),
}


@pytest.mark.parametrize("architecture", ST_ARCHITECTURES, ids=ST_ARCHITECTURES.keys())
def test_sentence_transformers_saved_sparse_model_loads_in_embedtrain_with_identical_embeddings(
        architecture, tiny_mlm_checkpoint, tiny_checkpoint, tmp_path):
    st = ST_ARCHITECTURES[architecture](tiny_mlm_checkpoint, tiny_checkpoint)
    st.save(str(tmp_path / "model"))

    ours = load_model(tmp_path / "model")

    assert isinstance(ours, SparseEmbedder)
    assert ours.max_active_dims == st.max_active_dims
    assert_same_encodings(st, ours)


def test_max_active_dims_keeps_the_largest_values_like_sentence_transformers(tiny_mlm_checkpoint, tmp_path):
    ours = splade(tiny_mlm_checkpoint)
    save_model(ours, tmp_path / "model")
    st = SparseEncoder(str(tmp_path / "model"), device="cpu")

    capped = ours.encode(TEXTS, max_active_dims=5)

    assert_same(st.encode(TEXTS, max_active_dims=5), capped)
    assert SparseEmbedder.sparsity(capped)["active_dims"] <= 5
    assert SparseEmbedder.sparsity(capped) == pytest.approx(st.sparsity(capped))


def test_saved_max_active_dims_applies_after_loading_in_both_libraries(tiny_mlm_checkpoint, tmp_path):
    ours = splade(tiny_mlm_checkpoint)
    ours.max_active_dims = 3
    save_model(ours, tmp_path / "model")

    st = SparseEncoder(str(tmp_path / "model"), device="cpu")

    assert st.max_active_dims == 3 and load_model(tmp_path / "model").max_active_dims == 3
    assert_same(st.encode(TEXTS), load_model(tmp_path / "model").encode(TEXTS))


def test_decode_lists_the_top_tokens_like_sentence_transformers(tiny_mlm_checkpoint, tmp_path):
    ours = splade(tiny_mlm_checkpoint)
    save_model(ours, tmp_path / "model")
    st = SparseEncoder(str(tmp_path / "model"), device="cpu")
    embeddings = ours.encode(TEXTS[:3])

    decoded = ours.decode(embeddings, top_k=4)

    expected = st.decode(embeddings, top_k=4)
    assert [[token for token, _ in row] for row in decoded] == [[token for token, _ in row] for row in expected]
    assert [weight for row in decoded for _, weight in row] == pytest.approx(
        [weight for row in expected for _, weight in row])
    assert ours.decode(embeddings[0].to_dense(), top_k=2) == decoded[0][:2]


def test_sparse_similarity_is_the_dot_product_of_the_dense_vectors(tiny_mlm_checkpoint):
    ours = splade(tiny_mlm_checkpoint)
    queries, documents = ours.encode_query(TEXTS[:2]), ours.encode_document(TEXTS)

    scores = ours.similarity(queries, documents)

    assert_same(queries.to_dense() @ documents.to_dense().T, scores)


def test_router_routes_by_the_task_stamped_into_the_features(tiny_mlm_checkpoint):
    model = inference_free_splade(tiny_mlm_checkpoint)
    query_features = model.tokenize(["a man plays guitar"], task="query")
    document_features = model.tokenize(["a man plays guitar"], task="document")

    assert query_features["task"] == "query"
    query = model(query_features)["sentence_embedding"]
    document = model(document_features)["sentence_embedding"]

    static = model[0].sub_modules["query"][0]
    ids = model.tokenize(["a man plays guitar"], task="query")["input_ids"][0]
    assert torch.equal(query[0].nonzero().flatten(), ids.unique())  # one weight per distinct token, nothing else
    assert torch.allclose(query[0, ids], static.weight[ids])
    assert not torch.allclose(query, document)


def test_a_sparse_model_type_with_dense_modules_is_refused(tiny_checkpoint):
    with pytest.raises(ValueError, match="SparseEncoder ends with"):
        SparseEmbedder([Transformer.from_pretrained(tiny_checkpoint), Pooling(32, ("mean",))])
