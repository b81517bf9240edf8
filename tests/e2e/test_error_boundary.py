"""The CLI's error boundary: a broken model, an unusable output directory or an error embedtrain does not expect ends
with the documented exit code and a message naming the file or key and the fix, never a traceback (unless --verbose).

Each case runs the real CLI; broken models are copies of the tiny checkpoint, damaged.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from accelerate.state import AcceleratorState
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.errors import ExitCode

runner = CliRunner()
TRACEBACK = "Traceback (most recent call last)"
PAIRS = "anchor,positive\na man plays guitar,a man plays a guitar\na dog runs,a dog is running\n"


def write_recipe(folder: Path, model: Path | str, **loss) -> Path:
    (folder / "train.csv").write_text(PAIRS, encoding="utf-8")
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "MultipleNegativesRankingLoss", **loss}},
        "datasets": {"train": {"pairs": {"source": str(folder / "train.csv")}}},
        "training": {"output_dir": str(folder / "run"), "max_steps": 1, "batch_size": 2},
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def invoke(*arguments: str):
    AcceleratorState._reset_state(reset_partial_state=True)
    return runner.invoke(app, [str(argument) for argument in arguments])


def assert_fails_cleanly(result, code: ExitCode, *fragments: str) -> str:
    """The exit code, every fragment in the message (the console wraps long lines), and no traceback: neither
    printed nor escaped from the command (CliRunner would catch it: result.exception not a SystemExit)."""
    output = " ".join(result.output.split())
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    for fragment in fragments:
        assert fragment in output, output
    assert TRACEBACK not in result.output
    return output


# -- broken models: copies of the tiny checkpoint, each damaged one way --

def edit_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8")) | changes
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")


DAMAGES: dict[str, tuple[Callable[[Path], None], list[str]]] = {
    "config.json not JSON": (lambda folder: (folder / "config.json").write_text("{not json", encoding="utf-8"),
                             ["config.json:1:2: not valid JSON"]),
    "config.json missing": (lambda folder: (folder / "config.json").unlink(), ["neither a sentence-transformers model (modules.json) nor a Hugging Face checkpoint (config.json)"]),
    "weights missing": (lambda folder: (folder / "model.safetensors").unlink(),
                        ["cannot read the model", "model.safetensors"]),
    "weights damaged": (lambda folder: (folder / "model.safetensors").write_bytes(b"not safetensors"),
                        ["cannot read the model (SafetensorError"]),
    "unknown model_type": (lambda folder: edit_config(folder, model_type="brt"),
                           ["config.json: model_type 'brt' is not an architecture", "did you mean 'bert'?"]),
    "custom code not trusted": (lambda folder: edit_config(folder, auto_map={"AutoModel": "modeling_x.XModel"}),
                                ["config.json: this model needs its own Python code", "model.trust_remote_code",
                                 "runs that Python code on this machine"]),
}


@pytest.fixture
def broken_model(request, tmp_path, tiny_checkpoint) -> tuple[Path, list[str]]:
    damage, fragments = DAMAGES[request.param]
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    damage(folder)
    return folder, [str(folder)] + fragments


@pytest.mark.parametrize("broken_model", list(DAMAGES), indirect=True)
def test_train_with_a_broken_model_exits_2(broken_model, tmp_path):
    folder, fragments = broken_model
    result = invoke("train", write_recipe(tmp_path, folder))
    assert_fails_cleanly(result, ExitCode.INVALID_INPUT, *fragments)


@pytest.mark.parametrize("broken_model", ["config.json not JSON", "weights damaged", "unknown model_type"],
                         indirect=True)
@pytest.mark.parametrize("command", ["eval", "list modules"])
def test_eval_and_list_modules_with_a_broken_model_exit_2(broken_model, command, sts_csv):
    folder, fragments = broken_model
    arguments = ["--evaluator", "sts", "--data", sts_csv] if command == "eval" else []
    result = invoke(*command.split(), folder, *arguments)
    assert_fails_cleanly(result, ExitCode.INVALID_INPUT, *fragments)


@pytest.mark.parametrize("broken_model", ["custom code not trusted", "unknown model_type"], indirect=True)
def test_validate_dataset_with_a_broken_model_exits_2(broken_model, tmp_path):
    folder, fragments = broken_model
    (tmp_path / "pairs.csv").write_text(PAIRS, encoding="utf-8")
    result = invoke("validate-dataset", "--data", tmp_path / "pairs.csv", "--loss", "MultipleNegativesRankingLoss",
                    "--model", folder)
    assert_fails_cleanly(result, ExitCode.INVALID_INPUT, *fragments)


@pytest.mark.parametrize("broken_model", ["weights damaged"], indirect=True)
def test_a_broken_guide_model_names_the_loss_parameter(broken_model, tmp_path, tiny_checkpoint):
    folder, fragments = broken_model
    recipe = write_recipe(tmp_path, tiny_checkpoint, type="GISTEmbedLoss", guide=str(folder))
    assert_fails_cleanly(invoke("train", recipe), ExitCode.INVALID_INPUT, f"guide '{folder}'", *fragments)


def test_a_hub_id_not_found_offline_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = invoke("train", write_recipe(tmp_path, "no-such-org/no-such-model"))
    assert_fails_cleanly(result, ExitCode.INVALID_INPUT, "cannot get model 'no-such-org/no-such-model'",
                         "Pass a local model directory")


def test_untrusted_custom_code_fails_without_traceback_in_a_real_process(tmp_path, tiny_checkpoint):
    """The whole process, as a user runs it: stderr holds the message and no traceback."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, folder)
    edit_config(folder, auto_map={"AutoModel": "modeling_x.XModel"})
    environment = os.environ | {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COLUMNS": "400"}
    process = subprocess.run([sys.executable, "-m", "embedtrain", "train", str(write_recipe(tmp_path, folder))],
                             capture_output=True, text=True, env=environment, cwd=Path(__file__).parents[2], timeout=300)
    assert process.returncode == ExitCode.INVALID_INPUT, process.stderr
    assert "model.trust_remote_code" in process.stderr
    assert TRACEBACK not in process.stderr + process.stdout


# -- training.output_dir that cannot be used --

def test_output_dir_that_is_a_file_exits_2(tmp_path, tiny_checkpoint):
    recipe = write_recipe(tmp_path, tiny_checkpoint)
    (tmp_path / "run").write_text("not a directory", encoding="utf-8")
    assert_fails_cleanly(invoke("train", recipe), ExitCode.INVALID_INPUT,
                         f"training.output_dir: {tmp_path / 'run'} is a file")
    assert (tmp_path / "run").read_text(encoding="utf-8") == "not a directory"


def test_output_dir_under_a_file_exits_2(tmp_path, tiny_checkpoint):
    (tmp_path / "afile").write_text("", encoding="utf-8")
    result = invoke("train", write_recipe(tmp_path, tiny_checkpoint), "--output-dir", tmp_path / "afile" / "run")
    assert_fails_cleanly(result, ExitCode.INVALID_INPUT, "training.output_dir: cannot write", str(tmp_path / "afile"))


def test_output_dir_without_permission_exits_2(tmp_path, tiny_checkpoint, monkeypatch):
    # Tests may run as root, which no file mode stops: the refusal is injected where the directory is created.
    forbidden = tmp_path / "forbidden"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == forbidden / "run":
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    result = invoke("train", write_recipe(tmp_path, tiny_checkpoint), "--output-dir", forbidden / "run")
    assert_fails_cleanly(result, ExitCode.INVALID_INPUT, f"training.output_dir: cannot write {forbidden / 'run'}",
                         "Permission denied")


# -- an error embedtrain does not expect --

def fail_unexpectedly(*args, **kwargs):
    raise RuntimeError("injected failure\nsecond line")


def test_unexpected_error_in_train_exits_4_with_the_traceback_in_the_run_dir(tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("embedtrain.engine.trainer.Trainer.train", fail_unexpectedly)  # once the run has started
    result = invoke("train", write_recipe(tmp_path, tiny_checkpoint))
    log = tmp_path / "run" / "error.log"
    output = assert_fails_cleanly(result, ExitCode.RUNTIME_FAILURE, "unexpected error (RuntimeError: injected failure)",
                                  f"the full traceback is in {log}")
    assert "second line" not in output  # a one-line summary
    assert TRACEBACK in log.read_text(encoding="utf-8") and "fail_unexpectedly" in log.read_text(encoding="utf-8")


def test_unexpected_error_without_a_run_dir_writes_the_traceback_to_the_temp_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("embedtrain.commands.list_modules.load_for_listing", fail_unexpectedly)
    output = assert_fails_cleanly(invoke("list", "modules", "some-model"), ExitCode.RUNTIME_FAILURE,
                                  "unexpected error (RuntimeError: injected failure)")
    log = Path(re.search(r"the full traceback is in (\S+?\.log)", output).group(1))
    assert log.parent == tmp_path and TRACEBACK in log.read_text(encoding="utf-8")


def test_verbose_prints_the_traceback(tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("embedtrain.engine.trainer.Trainer.train", fail_unexpectedly)
    result = invoke("--verbose", "train", write_recipe(tmp_path, tiny_checkpoint))
    assert result.exit_code == ExitCode.RUNTIME_FAILURE, result.output
    assert TRACEBACK in result.output and "RuntimeError: injected failure" in result.output
    assert (tmp_path / "run" / "error.log").exists()


def test_verbose_prints_the_traceback_of_a_user_error_too(tmp_path, tiny_checkpoint):
    (tmp_path / "run").write_text("", encoding="utf-8")
    result = invoke("--verbose", "train", write_recipe(tmp_path, tiny_checkpoint))
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert TRACEBACK in result.output and "is a file" in result.output
