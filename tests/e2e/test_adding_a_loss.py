"""Adding a loss is adding one file: the README's example loss, dropped into a copy of the package, is listed,
validated in a recipe, checked against data and trained with, with no other file changed."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import embedtrain

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example_loss() -> str:
    """The code block of README.md marked `# adding-a-loss-example`, without its indentation."""
    block = README.read_text(encoding="utf-8").split("# adding-a-loss-example")[1].split("```")[0]
    lines = block.splitlines()[1:]
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


def embedtrain_command(package_root: Path, *arguments: str) -> subprocess.CompletedProcess:
    environment = os.environ | {"PYTHONPATH": str(package_root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "embedtrain", *arguments], capture_output=True, text=True,
                          env=environment, cwd=package_root)


@pytest.mark.slow  # three fresh interpreters
def test_a_new_loss_file_is_all_a_recipe_needs(tmp_path, tiny_checkpoint, binary_csv):
    package = tmp_path / "src" / "embedtrain"
    shutil.copytree(Path(embedtrain.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "losses" / "sigmoid_pair.py").write_text(readme_example_loss(), encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "model": {"base": str(tiny_checkpoint)},
        "losses": {"sigmoid": {"type": "SigmoidPairLoss", "scale": 5.0}},
        "datasets": {"train": {"pairs": {"source": str(binary_csv)}}},
        "training": {"output_dir": str(tmp_path / "run"), "max_steps": 2, "batch_size": 4, "logging_steps": 1,
                     "eval_before_training": False},
    }), encoding="utf-8")

    listed = embedtrain_command(tmp_path / "src", "list", "losses", "--json")
    assert listed.returncode == 0, listed.stderr
    entry = next(loss for loss in json.loads(listed.stdout) if loss["name"] == "SigmoidPairLoss")
    assert entry["inputs"] == ["sentence1", "sentence2"] and entry["label"] == "binary"

    mistyped = recipe.read_text(encoding="utf-8").replace("scale: 5.0", "scael: 5.0")
    (tmp_path / "mistyped.yaml").write_text(mistyped, encoding="utf-8")
    rejected = embedtrain_command(tmp_path / "src", "validate-dataset", str(tmp_path / "mistyped.yaml"))
    assert rejected.returncode == 2 and "losses.sigmoid.scael: unknown key (did you mean 'scale'?)" in rejected.stderr

    trained = embedtrain_command(tmp_path / "src", "train", str(recipe))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)
