"""`embedtrain push` through the real CLI and huggingface_hub, against a local server standing in for the Hub
(tests/helpers/hub_server.py): what reaches the server, byte for byte, and each failure's message and exit code."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.hub_server import TOKEN, LocalHub, Repo
from huggingface_hub import constants
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.engine.checkpoint import STATE_FILE, TrainerState
from embedtrain.errors import ExitCode
from embedtrain.models import save_model
from embedtrain.models.io import load_model

runner = CliRunner()

CARD = "---\nlibrary_name: sentence-transformers\ntags:\n- embedtrain\n---\n# A tiny model\n"


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory, tiny_checkpoint) -> Path:
    """RUN/final (a saved model with a card) and RUN/checkpoints with two completed checkpoints and the staging
    folder of one being written."""
    run = tmp_path_factory.mktemp("run")
    save_model(load_model(tiny_checkpoint), run / "final")
    (run / "final" / "README.md").write_text(CARD, encoding="utf-8")
    for step in (2, 4):
        checkpoint = run / "checkpoints" / f"checkpoint-{step:07d}"
        shutil.copytree(run / "final", checkpoint / "model")
        (checkpoint / "state").mkdir()
        (checkpoint / "state" / "optimizer.bin").write_bytes(bytes(range(256)) * step)
        TrainerState(step=step).save(checkpoint / STATE_FILE)
    shutil.copytree(run / "checkpoints" / "checkpoint-0000004", run / "checkpoints" / ".checkpoint-0000006.partial")
    return run


@pytest.fixture
def hub(monkeypatch):
    """The local Hub, with huggingface_hub of this process pointed at it (HF_ENDPOINT is read when huggingface_hub is
    imported, so its constant is set) and a token it accepts."""
    with LocalHub() as server:
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


def folder_files(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def push(*args: str):
    result = runner.invoke(app, ["push", *args])
    assert "Traceback" not in result.output and TOKEN not in result.output
    return result


def test_push_uploads_the_model_folder_byte_for_byte_into_a_new_private_repo(hub, saved_run):
    result = push(str(saved_run / "final"), "me/tiny", "--private")

    assert result.exit_code == 0, result.output
    assert hub.files("me/tiny") == folder_files(saved_run / "final")  # README.md (the card) included
    assert hub.repos["me/tiny"].private
    (commit,) = hub.commits
    assert commit.summary == "Upload model with embedtrain" and commit.revision == "main"
    output = " ".join(result.output.split())
    assert f"to {hub.url}/me/tiny" in output and f"commit {commit.oid} ({hub.url}/me/tiny/commit/{commit.oid})" in output
    for request in hub.requests:  # no path of this machine leaves it, the token only in its header
        assert str(saved_run) not in request.body.decode("utf-8", "replace")
        assert TOKEN not in request.path + request.query + request.body.decode("utf-8", "replace")


def test_push_again_to_an_existing_public_repo_on_a_new_branch_with_the_checkpoints(hub, saved_run):
    assert push(str(saved_run / "final"), "me/tiny").exit_code == 0
    result = push(str(saved_run / "final"), "me/tiny", "--revision", "v2", "--commit-message", "lr 3e-5",
                  "--checkpoints")

    assert result.exit_code == 0, result.output
    creates = [request for request in hub.requests if request.path == "/api/repos/create"]
    assert len(creates) == 2 and b"visibility" not in creates[0].body  # public: the Hub's default visibility
    assert not hub.repos["me/tiny"].private
    assert [request.path for request in hub.requests].count("/api/models/me/tiny/branch/v2") == 1
    expected = folder_files(saved_run / "final") | {
        f"checkpoints/{name}": content for name, content in folder_files(saved_run / "checkpoints").items()
        if not name.startswith(".")}  # the staging folder of an unfinished checkpoint stays home
    assert hub.files("me/tiny", "v2") == expected
    assert [(c.revision, c.summary) for c in hub.commits] == [
        ("main", "Upload model with embedtrain"), ("v2", "lr 3e-5"), ("v2", "lr 3e-5 (checkpoints)")]
    output = " ".join(result.output.split())
    assert f"{hub.url}/me/tiny/tree/v2" in output and "pushed 2 checkpoints" in output


def test_push_in_a_new_process_reads_the_endpoint_from_hf_endpoint(hub, saved_run):
    env = os.environ | {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": TOKEN,
                        "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-m", "embedtrain", "push", str(saved_run / "final"), "me/fresh"],
                          env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert hub.files("me/fresh") == folder_files(saved_run / "final")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("case, expected", [
    ("wrong token", ["refused the token", "HTTP 401", "invalid or expired", "HF_TOKEN", "hf auth login"]),
    ("no token", ["no Hugging Face token", "HF_TOKEN", "hf auth login", "/settings/tokens"]),
    ("no right to create", ["does not let this token write to other/tiny", "HTTP 403", "token with write access"]),
    ("no right to commit", ["does not let this token write to other/tiny", "HTTP 403", "push to your own namespace"]),
    ("hub down", ["cannot reach the Hub at http://127.0.0.1:", "network connection", "HF_ENDPOINT"]),
    ("offline", ["HF_HUB_OFFLINE is set", "unset it"]),
    ("bad repo id", ["'other/tiny/x' is not a Hub repo id: use NAME or NAMESPACE/NAME"]),
])
def test_push_failures_name_the_cause_and_the_fix_and_exit_2(hub, saved_run, monkeypatch, tmp_path, case, expected):
    repo = "other/tiny"
    if case == "wrong token":
        monkeypatch.setenv("HF_TOKEN", "hf_not_the_right_one")
    elif case == "no token":
        monkeypatch.delenv("HF_TOKEN")
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    elif case == "no right to create":
        hub.refuse["create"] = (403, "You don't have the rights to create a model under the namespace \"other\"")
    elif case == "no right to commit":  # someone else's existing repo
        hub.repos[repo] = Repo(private=False)
        hub.refuse["commit"] = (403, "You don't have the rights to push to this repo")
    elif case == "hub down":
        monkeypatch.setattr(constants, "ENDPOINT", closed_port_url())
    elif case == "offline":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    elif case == "bad repo id":
        repo = "other/tiny/x"

    result = push(str(saved_run / "final"), repo)

    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    output = " ".join(result.output.split())
    for part in expected:
        assert part in output
    assert not hub.commits
    if case in ("no token", "offline", "bad repo id"):  # found before any request
        assert not hub.requests


def test_a_hub_failing_on_its_side_exits_4(hub, saved_run):
    hub.refuse["create"] = (500, "Internal Error")
    result = push(str(saved_run / "final"), "me/tiny")
    assert result.exit_code == ExitCode.RUNTIME_FAILURE, result.output
    assert "failed on its side" in result.output and "push again later" in " ".join(result.output.split())


def test_a_card_the_hub_rejects_names_the_hub_s_reason(hub, saved_run, tmp_path):
    model = shutil.copytree(saved_run / "final", tmp_path / "final")
    (model / "README.md").write_text("---\ntags: [unclosed\n---\n", encoding="utf-8")
    result = push(str(model), "me/tiny")
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "HTTP 400" in result.output and "invalid YAML" in result.output
    assert not hub.commits


@pytest.mark.parametrize("make, expected", [
    (lambda folder: folder, "no such folder"),
    (lambda folder: folder.mkdir() or folder, "neither a sentence-transformers model (modules.json) nor"),
])
def test_a_folder_that_is_not_a_saved_model_is_refused_before_any_request(hub, tmp_path, make, expected):
    result = push(str(make(tmp_path / "model")), "me/tiny")
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert expected in " ".join(result.output.split()) and "OUTPUT_DIR/final" in " ".join(result.output.split())
    assert not hub.requests


def test_checkpoints_asked_of_a_model_without_a_run_are_refused_before_any_request(hub, saved_run, tmp_path):
    model = shutil.copytree(saved_run / "final", tmp_path / "alone")
    result = push(str(model), "me/tiny", "--checkpoints")
    assert result.exit_code == ExitCode.INVALID_INPUT, result.output
    assert "no completed checkpoint" in result.output and "leave --checkpoints out" in " ".join(result.output.split())
    assert not hub.requests
