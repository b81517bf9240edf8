"""EMBEDTRAIN_MIRROR: hub datasets and models read from local copies, each copy reported; a hub id the mirror does not
name goes to the hub as before; a bad mirror file is an error (exit 2) naming the file and the key."""

import logging
from pathlib import Path

import datasets
import pytest
import yaml
from helpers.data import write_beir_folder
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.data import source as source_module
from embedtrain.data.mirror import ENV_VAR, MirrorError, dataset_copy, model_copy
from embedtrain.data.source import DataSource, load_source, load_stream
from embedtrain.errors import ExitCode
from embedtrain.evaluation.beir import load_beir_hub
from embedtrain.models.io import resolve_model_path

ROWS = "sentence1,sentence2,score\n" + "".join(f"first {i},second {i},0.{i}\n" for i in range(8))
WHERE = "datasets.train.sts"


@pytest.fixture
def mirror_dir(tmp_path, monkeypatch):
    """A folder with copies/ (two CSV splits, a model folder) and a function writing mirror.yaml there (set as the
    active mirror)."""
    copies = tmp_path / "copies"
    copies.mkdir()
    (copies / "train.csv").write_text(ROWS, encoding="utf-8")
    (copies / "test.csv").write_text(ROWS.replace("first", "third"), encoding="utf-8")
    (copies / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_mirror(directory: Path, content, monkeypatch, name: str = "mirror.yaml") -> Path:
    path = directory / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(path))
    return path


def test_each_split_reads_its_copy_relative_to_the_mirror_file(mirror_dir, monkeypatch, caplog):
    write_mirror(mirror_dir, {"datasets": {"org/sts": {"train": "copies/train.csv", "test": "copies/test.csv"}}},
                 monkeypatch)
    monkeypatch.chdir(mirror_dir / "copies")  # relative paths are the mirror file's, not the current directory's
    with caplog.at_level(logging.INFO, logger="embedtrain.data.mirror"):
        train = load_source(DataSource(source="org/sts", split="train"), WHERE)
        test = load_source(DataSource(source="org/sts", split="test[:3]"), WHERE)  # the slice applies to the copy
    assert train["sentence1"][:2] == ["first 0", "first 1"] and len(train) == 8
    assert test["sentence1"] == ["third 0", "third 1", "third 2"]
    reported = [record.getMessage() for record in caplog.records]
    assert "mirror: org/sts[train] -> train.csv" in reported  # relative to the current directory below it
    assert "mirror: org/sts[test] -> test.csv" in reported
    streamed = load_stream(DataSource(source="org/sts", split="train", max_samples=2), WHERE)
    assert [row["sentence2"] for row in streamed] == ["second 0", "second 1"]


def test_a_subset_has_its_own_entry(mirror_dir, monkeypatch):
    write_mirror(mirror_dir, {"datasets": {"org/nli/triplet": {"train": "copies/test.csv"}}}, monkeypatch)
    rows = load_source(DataSource(source="org/nli", subset="triplet", split="train"), WHERE)
    assert rows["sentence1"][0] == "third 0"
    assert dataset_copy("org/nli", None, "train", WHERE) is None  # the dataset without that subset is not mapped


def test_a_whole_dataset_entry_is_read_with_the_split_asked_for(mirror_dir, monkeypatch):
    saved = mirror_dir / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"sentence1": ["a"], "sentence2": ["b"]}),
                          "test": datasets.Dataset.from_dict({"sentence1": ["c"], "sentence2": ["d"]})}
                         ).save_to_disk(str(saved / "full"))
    folder = mirror_dir / "folder"
    folder.mkdir()
    (folder / "train.csv").write_text(ROWS, encoding="utf-8")
    (folder / "test.csv").write_text(ROWS.replace("first", "third"), encoding="utf-8")
    write_mirror(mirror_dir, {"datasets": {"org/folder": "folder"}}, monkeypatch)
    assert load_source(DataSource(source="org/folder", split="test"), WHERE)["sentence1"][0] == "third 0"
    assert dataset_copy("org/folder", None, "validation", WHERE).split == "validation"


def test_a_hub_id_the_mirror_does_not_name_goes_to_the_hub(mirror_dir, monkeypatch):
    write_mirror(mirror_dir, {"datasets": {"org/sts": {"train": "copies/train.csv"}}}, monkeypatch)
    calls = []
    monkeypatch.setattr(source_module.datasets, "load_dataset",
                        lambda *args, **kwargs: calls.append((args, kwargs)) or datasets.Dataset.from_dict({"a": ["x"]}))
    load_source(DataSource(source="org/other", subset="pair", split="train", revision="v1"), WHERE)
    assert calls == [(("org/other", "pair"), {"split": "train", "revision": "v1", "streaming": False})]
    assert model_copy("org/some-model") is None


def test_without_a_mirror_nothing_is_mapped(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert dataset_copy("org/sts", None, "train", WHERE) is None and model_copy("org/model") is None


def test_a_model_id_resolves_to_its_copy(mirror_dir, monkeypatch, caplog):
    write_mirror(mirror_dir, {"models": {"org/model": "copies/model"}}, monkeypatch)
    with caplog.at_level(logging.INFO, logger="embedtrain.data.mirror"):
        assert resolve_model_path("org/model") == mirror_dir / "copies" / "model"
    assert "mirror: org/model -> copies/model" in [record.getMessage() for record in caplog.records]


def test_a_retrieval_set_maps_to_a_beir_folder(mirror_dir, monkeypatch):
    one_split = write_beir_folder(mirror_dir / "beir")
    write_mirror(mirror_dir, {"datasets": {"org/NanoBEIR": {"NanoNQ": "beir"}, "org/beir-copy": "beir"}}, monkeypatch)
    by_split = load_beir_hub("org/NanoBEIR", "NanoNQ", "evaluators.0")  # the folder's only qrels file
    whole = load_beir_hub("org/beir-copy", "test", "evaluators.0")  # qrels/test.tsv, the split asked for
    assert by_split == whole and len(by_split.queries) > 0 and one_split.is_dir()


@pytest.mark.parametrize(("content", "expected"), [
    ("datasets: [unclosed", "not valid YAML at line 1"),
    ({"dataset": {}}, "unknown key 'dataset' (did you mean 'datasets'?)"),
    ({"datasets": {"org/sts": {"train": "copies/missing.csv"}}}, "datasets.'org/sts'.train: copies/missing.csv does not exist"),
    ({"datasets": {"org/sts": {"train[:10]": "copies/train.csv"}}}, "'train[:10]' is not a split name"),
    ({"datasets": {"org/sts": {}}}, "datasets.'org/sts' maps no split"),
    ({"datasets": {"./data/sts.csv": "copies/train.csv"}}, "'./data/sts.csv' is not a hub_id or hub_id/subset"),
    ({"models": {"org/model": "copies/train.csv"}}, "models.'org/model': "),
    ({"models": {"org/model": ["copies/model"]}}, "models.'org/model': expected a local path"),
    ({"models": ["org/model"]}, "`models` must map hub ids to local paths"),
])
def test_a_bad_mirror_file_names_the_file_and_the_key(mirror_dir, monkeypatch, content, expected):
    path = write_mirror(mirror_dir, content, monkeypatch, name=f"mirror-{abs(hash(str(content)))}.yaml")
    with pytest.raises(MirrorError) as raised:
        dataset_copy("org/sts", None, "train", WHERE)
    assert str(path.resolve()) in str(raised.value) and expected in str(raised.value)


def test_a_missing_mirror_file_is_an_error(mirror_dir, monkeypatch):
    monkeypatch.setenv(ENV_VAR, "no-such-mirror.yaml")
    with pytest.raises(MirrorError, match=f"{ENV_VAR}=no-such-mirror.yaml: no such file"):
        model_copy("org/model")


def test_a_split_the_mirror_lacks_is_an_error(mirror_dir, monkeypatch):
    path = write_mirror(mirror_dir, {"datasets": {"org/sts": {"train": "copies/train.csv"}}}, monkeypatch)
    with pytest.raises(MirrorError, match=r"maps 'org/sts' but not its split 'tests' \(it maps train\)") as raised:
        load_source(DataSource(source="org/sts", split="tests"), WHERE)
    assert str(path.resolve()) in str(raised.value) and str(raised.value).startswith(WHERE)


def test_the_cli_exits_2_with_the_mirror_problem(mirror_dir, monkeypatch):
    write_mirror(mirror_dir, {"datasets": {"org/sts": {"train": "copies/nope.csv"}}}, monkeypatch)
    result = CliRunner().invoke(app, ["validate-dataset", "--data", "org/sts", "--loss", "CoSENTLoss"],
                                terminal_width=300)
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "mirror.yaml: datasets.'org/sts'.train: copies/nope.csv does not exist" in " ".join(result.output.split())


def test_a_tsdae_decoder_named_by_hub_id_is_read_from_its_copy(mirror_dir, monkeypatch, tiny_checkpoint):
    from embedtrain.losses.denoising_auto_encoder import DenoisingAutoEncoderParams, load_decoder
    from embedtrain.modules import Transformer

    write_mirror(mirror_dir, {"models": {"org/decoder": str(tiny_checkpoint)}}, monkeypatch)
    params = DenoisingAutoEncoderParams(type="DenoisingAutoEncoderLoss", decoder_name_or_path="org/decoder",
                                        tie_encoder_decoder=False)
    decoder, _ = load_decoder(params, Transformer.load(tiny_checkpoint))
    assert Path(decoder.config._name_or_path) == tiny_checkpoint
