"""Cross-encoder folders are interchangeable with sentence-transformers (ST 6.2 is the oracle).

Proven here:
- a cross-encoder embedtrain saves (1 and 3 labels, default and explicit activations, a short max_length) loads in
  ST with identical scores (max |delta| < 1e-5), as the legacy layout of §2.13 point 5 (config.json carries the
  activation; no modules.json);
- a cross-encoder ST 6.2 saves (its v5.4+ layout, with prompts), a legacy-layout folder and a pre-4.0 one load in
  embedtrain with the same scores, activation, prompts and max_length;
- pairs are tokenized as ST tokenizes them (segments, truncation of the longer text first), prompts are prepended
  to the first text, and `rank` orders documents as ST's does;
- the real all-MiniLM-L6-v2 encoder with a new head (slow): what the recipe builds is what ST builds, and its save
  loads in ST with identical scores.
"""

import json
from pathlib import Path

import pytest
import torch
from helpers.tiny_cross_encoders import PAIRS_OF_TEXTS, UNEVEN_PAIRS, make_tiny_classifier
from sentence_transformers import CrossEncoder as ReferenceCrossEncoder

from embedtrain.errors import ModelLoadError
from embedtrain.models import load_model, save_model
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.cross_encoder_io import load_cross_encoder

pytestmark = pytest.mark.usefixtures("one_thread")

PAIRS = UNEVEN_PAIRS + PAIRS_OF_TEXTS


def reference(path: Path, **options) -> ReferenceCrossEncoder:
    return ReferenceCrossEncoder(str(path), device="cpu", **options)


def assert_same_scores(ours: torch.Tensor, theirs) -> None:
    theirs = torch.as_tensor(theirs, dtype=torch.float32)
    assert ours.shape == theirs.shape
    assert float((ours - theirs).abs().max()) < 1e-5
    assert float(theirs.max() - theirs.min()) > 1e-2  # the scores differ from pair to pair: the check means something


@pytest.fixture(scope="module", params=[1, 3], ids=["1-label", "3-labels"])
def classifier(request, tmp_path_factory) -> Path:
    return make_tiny_classifier(tmp_path_factory.mktemp(f"classifier-{request.param}"), request.param)


# embedtrain -> sentence-transformers


@pytest.mark.parametrize("activation", [None, "identity", "tanh"])
def test_saved_cross_encoder_loads_in_st_with_identical_scores(classifier, tmp_path, activation):
    model = load_cross_encoder(classifier, activation=activation, max_length=24)
    save_model(model, tmp_path / "model")

    theirs = reference(tmp_path / "model")
    assert type(theirs.activation_fn).__name__ == {None: "Sigmoid" if model.num_labels == 1 else "Identity",
                                                  "identity": "Identity", "tanh": "Tanh"}[activation]
    assert theirs.num_labels == model.num_labels and theirs.max_seq_length == 24
    assert_same_scores(model.predict(PAIRS), theirs.predict(PAIRS))
    assert_same_scores(model.predict(PAIRS, apply_activation=False),
                       theirs.predict(PAIRS, activation_fn=torch.nn.Identity()))


def test_the_saved_layout_is_the_one_st_5_and_6_load(classifier, tmp_path):
    save_model(load_cross_encoder(classifier, prompts={"query": "query: "}), tmp_path / "model")
    folder = tmp_path / "model"
    assert not (folder / "modules.json").exists()  # ST 5.x would ignore it and ST 6 would want v5.4+ module configs
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["sentence_transformers"]["version"] == "5.1.2"
    assert config["sentence_transformers"]["activation_fn"].startswith("torch.nn.modules.")
    settings = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert settings["model_type"] == "CrossEncoder" and settings["prompts"] == {"query": "query: "}
    assert json.loads((folder / "tokenizer_config.json").read_text())["model_max_length"] == 64


# sentence-transformers -> embedtrain


def test_st_saved_cross_encoder_loads_with_identical_scores(classifier, tmp_path):
    theirs = reference(classifier, max_length=20, activation_fn=torch.nn.Tanh(), prompts={"query": "find: "},
                       default_prompt_name="query")
    theirs.save(str(tmp_path / "st"))
    assert (tmp_path / "st" / "modules.json").exists()  # the v5.4+ layout

    ours = load_model(tmp_path / "st")
    assert isinstance(ours, CrossEncoder)
    assert (ours.activation_name, ours.max_length, ours.num_labels) == ("tanh", 20, theirs.num_labels)
    assert ours.prompts == {"query": "find: "} and ours.default_prompt_name == "query"
    assert_same_scores(ours.predict(PAIRS), theirs.predict(PAIRS))  # both apply the default prompt
    assert_same_scores(ours.predict(PAIRS, prompt=""), theirs.predict(PAIRS, prompt=""))


@pytest.mark.parametrize("key", ["sentence_transformers", "sbert_ce_default_activation_function"])
def test_legacy_folders_load_with_their_activation(classifier, tmp_path, key):
    """The legacy layout as ST <= 5.3 writes it (activation in config.json), and the pre-4.0 key."""
    folder = tmp_path / "legacy"
    theirs = reference(classifier)
    theirs.model.save_pretrained(folder)
    theirs.tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    identity = "torch.nn.modules.linear.Identity"
    config[key] = {"activation_fn": identity, "version": "5.1.2"} if key == "sentence_transformers" else identity
    (folder / "config.json").write_text(json.dumps(config))

    ours, theirs = load_model(folder), reference(folder)
    assert ours.activation_name == "identity" and type(theirs.activation_fn).__name__ == "Identity"
    assert_same_scores(ours.predict(PAIRS), theirs.predict(PAIRS))


def test_an_activation_embedtrain_does_not_apply_is_a_load_error(classifier, tmp_path):
    theirs = reference(classifier)
    theirs.save(str(tmp_path / "st"))
    settings = json.loads((tmp_path / "st" / "config_sentence_transformers.json").read_text())
    settings["activation_fn"] = "my_package.Swish"
    (tmp_path / "st" / "config_sentence_transformers.json").write_text(json.dumps(settings))
    with pytest.raises(ModelLoadError, match="activation function 'my_package.Swish' is not one embedtrain applies"):
        load_model(tmp_path / "st")


def test_a_plain_sequence_classifier_keeps_its_head_and_st_scores_it_alike(classifier):
    ours, theirs = load_cross_encoder(classifier), reference(classifier)
    assert_same_scores(ours.predict(PAIRS), theirs.predict(PAIRS))


# inputs and outputs


def test_pairs_are_tokenized_as_st_tokenizes_them(classifier):
    ours, theirs = load_cross_encoder(classifier, max_length=12), reference(classifier, max_length=12)
    expected = theirs.preprocess(PAIRS)
    features = ours.tokenize(PAIRS)
    assert features.keys() == {"input_ids", "attention_mask", "token_type_ids"}
    for key, value in features.items():
        assert torch.equal(value, expected[key]), key
    assert features["input_ids"].shape[1] == 12  # truncated: the longer text of each pair first


def test_prompts_are_prepended_to_the_first_text(classifier):
    ours = load_cross_encoder(classifier, prompts={"query": "query: ", "other": "find: "}, default_prompt_name="query")
    theirs = reference(classifier)
    assert_same_scores(ours.predict(PAIRS), theirs.predict(PAIRS, prompt="query: "))
    assert_same_scores(ours.predict(PAIRS, prompt_name="other"), theirs.predict(PAIRS, prompt="find: "))
    assert_same_scores(ours.predict(PAIRS, prompt="x y "), theirs.predict(PAIRS, prompt="x y "))
    first = ours.tokenizer.decode(ours.tokenize([("query: a dog", "a cat")])["input_ids"][0])
    assert first == "[CLS] query : a dog [SEP] a cat [SEP]"


def test_rank_orders_documents_as_st_does(tmp_path):
    path = make_tiny_classifier(tmp_path / "ranker", 1)
    ours, theirs = load_cross_encoder(path), reference(path)
    query, documents = "a man is playing", [second for _, second in PAIRS]
    expected = theirs.rank(query, documents, return_documents=True)
    ranked = ours.rank(query, documents, return_documents=True)
    assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in expected]
    assert [r["text"] for r in ranked] == [r["text"] for r in expected]
    assert ranked[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-5)
    assert [r["corpus_id"] for r in ours.rank(query, documents, top_k=3)] == [r["corpus_id"] for r in expected[:3]]


def test_predict_shapes_and_rank_needs_one_label(classifier):
    model = load_cross_encoder(classifier)
    scores = model.predict(PAIRS[:3], batch_size=2)
    assert scores.dtype == torch.float32 and scores.device.type == "cpu"
    assert scores.shape == ((3,) if model.num_labels == 1 else (3, model.num_labels))
    assert model.predict([]).shape == ((0,) if model.num_labels == 1 else (0, model.num_labels))
    if model.num_labels != 1:
        with pytest.raises(ValueError, match="num_labels 3"):
            model.rank("q", ["d"])


def test_embedtrain_round_trip_is_lossless(classifier, tmp_path):
    model = load_cross_encoder(classifier, activation="tanh", max_length=30, prompts={"q": "q: "}, default_prompt_name="q")
    save_model(model, tmp_path / "model")
    again = load_model(tmp_path / "model")
    assert (again.activation_name, again.max_length, again.prompts, again.default_prompt_name) == \
        ("tanh", 30, {"q": "q: "}, "q")
    assert torch.equal(again.predict(PAIRS), model.predict(PAIRS))


# the real encoder


@pytest.mark.slow
def test_minilm_encoder_with_a_new_head_matches_st(minilm_path, tmp_path):
    ours = build_model(ModelConfig(base=str(minilm_path), kind="cross_encoder"))
    theirs = reference(minilm_path)  # ST converts the dense model: its encoder with a new head, as we build it
    assert type(ours.model) is type(theirs.model)
    assert (ours.num_labels, ours.max_length, ours.activation_name) == (1, theirs.max_seq_length, "sigmoid") == \
        (1, 512, "sigmoid")
    encoder = {name: value for name, value in ours.model.state_dict().items() if not name.startswith("classifier")}
    for name, value in theirs.model.state_dict().items():
        if not name.startswith("classifier"):
            assert torch.equal(encoder[name], value), name
    save_model(ours, tmp_path / "model")
    assert_same_scores(ours.predict(PAIRS), reference(tmp_path / "model").predict(PAIRS))
