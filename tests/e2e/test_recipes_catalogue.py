"""`embedtrain recipes ls|show|cp`: the catalogue ships in the package (importlib.resources finds every recipe of
recipes/), lists each recipe with its metadata, prints it, and copies it without clobbering; a copied recipe trains
from an empty directory, offline through the mirror (the issue's "done when" sequence, in a real process)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState
from helpers.mirror import write_test_mirror
from helpers.processes import child_env
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.commands.recipes import SCHEMA_COMMENT, catalogue, header_metadata, recipe_names
from embedtrain.data.mirror import ENV_VAR
from embedtrain.errors import ExitCode, RecipeError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(path.stem for path in (ROOT / "recipes").glob("*.yaml"))
runner = CliRunner()


def invoke(*arguments: str):
    return runner.invoke(app, list(arguments), terminal_width=300)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def offline(tmp_path_factory, tiny_checkpoint, monkeypatch) -> Path:
    """The test mirror with all-MiniLM-L6-v2 mapped to the tiny random BERT, as the active mirror."""
    mirror = write_test_mirror(tmp_path_factory.mktemp("mirror"),
                               models={"sentence-transformers/all-MiniLM-L6-v2": tiny_checkpoint})
    monkeypatch.setenv(ENV_VAR, str(mirror))
    return mirror


def test_the_installed_catalogue_holds_every_recipe_of_the_repository():
    assert recipe_names() == SOURCES
    for recipe in catalogue():
        assert recipe.text == (ROOT / "recipes" / f"{recipe.name}.yaml").read_text(encoding="utf-8")


def test_every_recipe_states_its_purpose_and_time():
    for recipe in catalogue():
        assert recipe.purpose.endswith(".") and "CPU" in recipe.time and "GPU" in recipe.time, recipe.name


def test_a_recipe_without_its_metadata_fails():
    with pytest.raises(RecipeError, match=r"recipe new: its first comment lines must include `# time: ...`"):
        header_metadata("new", "# purpose: Something new.\n#\nmodel: {base: x}\n# time: below the header is not in it\n")


def test_ls_lists_every_recipe_with_what_it_trains():
    result = invoke("recipes", "ls", "--json")
    assert result.exit_code == 0, result.output
    entries = {entry["name"]: entry for entry in json.loads(result.output)}
    assert sorted(entries) == SOURCES
    assert entries["splade-nq"] | {"purpose": "", "time": ""} == {
        "name": "splade-nq", "kind": "sparse (splade)", "losses": ["SpladeLoss(SparseMultipleNegativesRankingLoss)"],
        "data": ["sentence-transformers/natural-questions"], "purpose": "", "time": ""}
    assert entries["quora-duplicates"]["losses"] == ["MultipleNegativesRankingLoss", "OnlineContrastiveLoss"]
    assert entries["static-nli"]["kind"] == "dense (static)"
    assert entries["qwen3-embedding-lora"]["kind"] == "dense (LoRA)"
    assert entries["quickstart"]["data"] == ["demo_sts_train.csv (ships with the recipe)"]
    table = invoke("recipes", "ls")
    assert table.exit_code == 0 and all(name in table.output for name in SOURCES)


def test_show_prints_the_recipe():
    result = invoke("recipes", "show", "stsb")
    assert result.exit_code == 0 and result.output == (ROOT / "recipes" / "stsb.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("command", ["show", "cp"])
def test_an_unknown_recipe_exits_2_with_the_closest_name(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("recipes", command, "stbs")
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert "no recipe 'stbs' in the catalogue (did you mean 'stsb'?)" in flat(result.output)
    assert list(tmp_path.iterdir()) == []


def test_cp_writes_name_yaml_with_the_schema_comment_and_never_clobbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("recipes", "cp", "stsb")
    assert result.exit_code == 0, result.output
    copy = tmp_path / "stsb.yaml"
    original = (ROOT / "recipes" / "stsb.yaml").read_text(encoding="utf-8")
    assert copy.read_text(encoding="utf-8") == SCHEMA_COMMENT + original
    assert SCHEMA_COMMENT == "# yaml-language-server: $schema=recipe.schema.json\n"
    assert "embedtrain schema --output recipe.schema.json" in flat(result.output)

    copy.write_text("edited", encoding="utf-8")
    again = invoke("recipes", "cp", "stsb")
    assert again.exit_code == ExitCode.INVALID_INPUT and "stsb.yaml already exists; add --force" in flat(again.output)
    assert copy.read_text(encoding="utf-8") == "edited"
    forced = invoke("recipes", "cp", "stsb", "--force")
    assert forced.exit_code == 0 and copy.read_text(encoding="utf-8") == SCHEMA_COMMENT + original

    assert invoke("recipes", "cp", "nli-mnrl", "mine/").exit_code == 0  # a folder: NAME.yaml in it
    assert invoke("recipes", "cp", "static-nli", "mine").exit_code == 0  # an existing folder
    assert invoke("recipes", "cp", "nli-mnrl", "mine/nli.yaml").exit_code == 0
    assert sorted(path.name for path in (tmp_path / "mine").iterdir()) == ["nli-mnrl.yaml", "nli.yaml", "static-nli.yaml"]


def test_a_copied_quickstart_trains_from_another_directory_with_its_data(tmp_path, monkeypatch, offline):
    monkeypatch.chdir(tmp_path)
    assert invoke("recipes", "cp", "quickstart").exit_code == 0
    assert sorted(path.name for path in (tmp_path / "quickstart-data").iterdir()) == [
        "demo_sts_test.csv", "demo_sts_train.csv"]
    text = (tmp_path / "quickstart.yaml").read_text(encoding="utf-8")
    assert "source: quickstart-data/demo_sts_train.csv" in text and "source: recipes/" not in text
    clobber = invoke("recipes", "cp", "quickstart", "other.yaml")  # its data would be overwritten
    assert clobber.exit_code == ExitCode.INVALID_INPUT and "demo_sts_train.csv" in clobber.output
    AcceleratorState._reset_state(reset_partial_state=True)
    result = invoke("train", "quickstart.yaml", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: every check passed" in flat(result.output)


def test_from_an_empty_directory_cp_then_an_offline_dry_run(tmp_path, offline):
    """The issue's sequence, as a user types it: `embedtrain recipes cp stsb`, then `EMBEDTRAIN_MIRROR=...
    embedtrain train stsb.yaml --dry-run`; every hub id the run reads is reported with its local copy."""
    empty = tmp_path / "empty"
    empty.mkdir()
    environment = child_env() | {ENV_VAR: str(offline)}
    copied = subprocess.run([sys.executable, "-m", "embedtrain", "recipes", "cp", "stsb"], cwd=empty,
                            env=environment, capture_output=True, text=True, timeout=300)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    run = subprocess.run([sys.executable, "-m", "embedtrain", "train", "stsb.yaml", "--dry-run"], cwd=empty,
                         env=environment, capture_output=True, text=True, timeout=600)
    output = flat(run.stdout + run.stderr)
    assert run.returncode == 0, output
    for line in ("mirror: sentence-transformers/all-MiniLM-L6-v2 ->", "mirror: sentence-transformers/stsb[train] ->",
                 "mirror: sentence-transformers/stsb[test] ->", "dry run: every check passed"):
        assert line in output
    assert sorted(path.name for path in empty.iterdir()) == ["stsb.yaml"]  # a dry run writes nothing
