"""What a re-scoring model is (`mine --rescore-kind`, a `mine:` step's `rescore_kind`): what its folder says under
auto, a plain checkpoint only when its kind is said, and never a cross-encoder with an untrained head. Checked from
the folder's configuration, before any weights load; every refusal is exit 2 and names the option and the fix."""

import pytest
from helpers.tiny_cross_encoders import make_tiny_classifier
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode, RecipeError
from embedtrain.evaluation.mining.models import load_rescorer, rescorer_kind, scorer_kind
from embedtrain.evaluation.mining.scoring import BiEncoderScorer
from embedtrain.models.build_sparse import build_sparse_model
from embedtrain.models.config import ModelConfig
from embedtrain.models.cross_encoder import CrossEncoder
from embedtrain.models.cross_encoder_io import load_cross_encoder, save_cross_encoder
from embedtrain.models.io import load_model, save_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_checkpoint, tiny_mlm_checkpoint):
    """One folder of each form a re-scorer may be given as."""
    root = tmp_path_factory.mktemp("rescorers")
    classifier = make_tiny_classifier(root / "plain-classifier")
    save_cross_encoder(load_cross_encoder(classifier), root / "saved-cross-encoder")
    save_model(load_model(tiny_checkpoint), root / "saved-dense")
    save_model(build_sparse_model(ModelConfig(base=str(tiny_mlm_checkpoint), kind="sparse")), root / "saved-sparse")
    return {"plain": tiny_checkpoint, "plain-masked-lm": tiny_mlm_checkpoint, "plain-classifier": classifier,
            "saved-cross-encoder": root / "saved-cross-encoder", "saved-dense": root / "saved-dense",
            "saved-sparse": root / "saved-sparse"}


@pytest.mark.parametrize(("folder", "kind", "resolved"), [
    ("saved-cross-encoder", "auto", "cross_encoder"),
    ("saved-cross-encoder", "cross_encoder", "cross_encoder"),
    ("plain-classifier", "auto", "cross_encoder"),  # a trained sequence-classification head: a reranker
    ("plain-classifier", "cross_encoder", "cross_encoder"),
    ("saved-dense", "auto", "dense"),
    ("saved-sparse", "auto", "sparse"),
    ("plain", "dense", "dense"),
    ("plain-masked-lm", "sparse", "sparse"),
    ("plain-masked-lm", "dense", "dense"),
])
def test_the_kind_is_what_the_folder_says_or_what_is_said(folders, folder, kind, resolved):
    assert rescorer_kind(str(folders[folder]), kind) == resolved


@pytest.mark.parametrize(("folder", "kind", "fragments"), [
    ("plain", "auto", ["--rescore {path}: a plain checkpoint", "set --rescore-kind dense (or sparse)",
                       "give a trained cross-encoder"]),
    ("plain-masked-lm", "auto", ["a plain checkpoint", "set --rescore-kind dense (or sparse)"]),
    ("plain-masked-lm", "cross_encoder", ["--rescore-kind cross_encoder: --rescore {path} is a plain checkpoint, "
                                          "without a trained classification head", "untrained",
                                          "Give a trained cross-encoder", "set --rescore-kind dense or sparse"]),
    ("saved-dense", "cross_encoder", ["is a saved dense model, without a trained classification head"]),
    ("saved-cross-encoder", "dense", ["--rescore-kind dense: --rescore {path} is a cross-encoder",
                                      "set --rescore-kind auto or cross_encoder"]),
    ("plain-classifier", "sparse", ["--rescore-kind sparse", "is a cross-encoder", "keeps its kind"]),
])
def test_a_folder_that_is_not_of_the_kind_is_refused_naming_the_option_and_the_fix(folders, folder, kind, fragments):
    with pytest.raises(RecipeError) as raised:
        rescorer_kind(str(folders[folder]), kind)
    for fragment in fragments:
        assert fragment.format(path=folders[folder]) in str(raised.value), raised.value


def test_the_recipe_s_keys_are_named_in_its_errors(folders):
    where = "datasets.train.qa.mine"
    with pytest.raises(RecipeError, match=rf"{where}.rescore .*: a plain checkpoint.*set {where}.rescore_kind dense"):
        rescorer_kind(str(folders["plain"]), "auto", f"{where}.rescore", f"{where}.rescore_kind")


@pytest.mark.parametrize(("folder", "kind", "loaded"), [
    ("saved-cross-encoder", "auto", "cross_encoder"),
    ("plain-classifier", "cross_encoder", "cross_encoder"),
    ("plain", "dense", "dense"),
    ("plain-masked-lm", "sparse", "sparse"),  # SPLADE from the masked-LM head, as `kind: sparse` builds it
    ("saved-sparse", "auto", "sparse"),
])
def test_the_rescorer_loads_as_the_kind_found(folders, folder, kind, loaded):
    scorer = load_rescorer(str(folders[folder]), kind, None)
    assert scorer_kind(scorer) == loaded
    assert isinstance(scorer, CrossEncoder if loaded == "cross_encoder" else BiEncoderScorer)
    scores = scorer.predict([("what is the weather", "it is sunny"), ("a dog", "a dog runs in the park")], 2)
    assert scores.shape == (2,)


def test_mine_refuses_a_plain_rescorer_before_loading_anything(folders, tmp_path, monkeypatch):
    from embedtrain.commands import mine

    monkeypatch.setattr(mine, "load_embedder", lambda *a, **k: pytest.fail("the mining model was loaded"))
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("question,answer\nwhat is the weather,it is sunny\na dog,a dog runs\n", encoding="utf-8")
    output = tmp_path / "mined.parquet"
    result = CliRunner().invoke(app, ["mine", "--data", str(pairs), "--model", str(folders["plain"]), "--rescore",
                                      str(folders["plain-masked-lm"]), "--output", str(output)])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "--rescore-kind" in result.output and "plain checkpoint" in result.output
    assert not output.exists()

    result = CliRunner().invoke(app, ["mine", "--data", str(pairs), "--model", str(folders["plain"]), "--output",
                                      str(output), "--rescore-kind", "dense"])
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "add --rescore, or remove --rescore-kind" in " ".join(result.output.split())
