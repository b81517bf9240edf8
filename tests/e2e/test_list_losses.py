"""`embedtrain list losses` lists every registered loss, from the registry, as a table or as JSON."""

import json

from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.losses import LOSSES


def test_json_lists_every_loss_with_its_contract_and_defaults() -> None:
    result = CliRunner().invoke(app, ["list", "losses", "--json"])
    assert result.exit_code == 0, result.output
    catalogue = {entry["name"]: entry for entry in json.loads(result.output)}
    assert set(catalogue) == set(LOSSES)
    mnrl = catalogue["MultipleNegativesRankingLoss"]
    assert mnrl["inputs"] == ["anchor", "positive", "negative..."] and mnrl["label"] is None
    assert mnrl["parameters"]["scale"]["default"] == 20.0 and mnrl["parameters"]["directions"]["default"] == ["query_to_doc"]
    assert catalogue["SoftmaxLoss"]["parameters"]["num_labels"]["default"] == "required"
    assert catalogue["MarginMSELoss"]["label"] == "scores"
    assert catalogue["MatryoshkaLoss"]["inputs"].startswith("those of the wrapped")
    for distill in ("MSELoss", "EmbedDistillLoss"):
        assert catalogue[distill]["parameters"]["teacher"]["default"] is None
        assert catalogue[distill]["parameters"]["teacher_embeds"]["default"] == "each_column"
    assert all(entry["description"] for entry in catalogue.values())


def test_each_loss_shows_its_family() -> None:
    result = CliRunner().invoke(app, ["list", "losses", "--json"])
    catalogue = json.loads(result.output)
    families = {entry["name"]: entry["family"] for entry in catalogue}
    assert families["MultipleNegativesRankingLoss"] == families["MatryoshkaLoss"] == "dense"
    assert families["SpladeLoss"] == families["SparseMarginMSELoss"] == families["SparseMSELoss"] == "sparse"
    cross_encoder = {"BinaryCrossEntropyLoss", "CrossEntropyLoss", "CrossEncoderMultipleNegativesRankingLoss",
                     "CrossEncoderCachedMultipleNegativesRankingLoss", "CrossEncoderMSELoss", "CrossEncoderMarginMSELoss",
                     "LambdaLoss", "RankNetLoss", "ListNetLoss", "ListMLELoss", "PListMLELoss", "ADRMSELoss"}
    assert {name for name, family in families.items() if family == "cross-encoder"} == cross_encoder
    order = [entry["family"] for entry in catalogue]
    assert order == sorted(order, key=["dense", "sparse", "cross-encoder"].index)  # grouped by family
    lambda_loss = next(entry for entry in catalogue if entry["name"] == "LambdaLoss")
    assert lambda_loss["inputs"] == ["query", "[documents]"] and lambda_loss["label"] == "list_scores"
    assert lambda_loss["parameters"]["weighting_scheme"]["default"] == "NDCGLoss2PPScheme"
    assert lambda_loss["parameters"]["mu"]["default"] == 10.0


def test_table_names_every_loss() -> None:
    result = CliRunner().invoke(app, ["list", "losses"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in LOSSES)
    assert "family" in result.output and "cross-encoder" in result.output
    assert "[u; v; |u - v|; u * v]" in result.output  # descriptions are not eaten as markup
