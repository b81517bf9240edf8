"""`embedtrain train` in a real child process, for faults that only a real process shows (kill -9, signals, limits)."""

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

WORKTREE = Path(__file__).resolve().parents[2]


def tiny_recipe(directory: Path, model: Path, data: Path, **training) -> Path:
    """A recipe without evaluators (faster), logging every step."""
    recipe = {
        "model": {"base": str(model)},
        "losses": {"main": {"type": "CoSENTLoss"}},
        "datasets": {"train": {"sts": {"source": str(data)}}},
        "training": {"output_dir": str(directory / "run"), "batch_size": 8, "learning_rate": 1e-3,
                     "warmup_ratio": 0.2, "logging_steps": 1, "seed": 7} | training,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def free_port() -> int:
    """A TCP port free on this machine now, for a process group's rendezvous."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_env() -> dict[str, str]:
    # One thread: bit-identical results between processes, and no contention with the test machine's other work.
    return os.environ | {"PYTHONPATH": str(WORKTREE), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                         "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                         "COLUMNS": "200"}


def start_train(recipe: Path, *args: str, preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "embedtrain", "train", str(recipe), *args], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=preexec_fn)


def run_train(recipe: Path, *args: str, preexec_fn: Callable[[], None] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    process = start_train(recipe, *args, preexec_fn=preexec_fn)
    output, _ = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen, timeout: float = 120,
               interval: float = 0.002) -> bool:
    """Poll `condition` until it holds (True) or `process` exits or the time is up (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(interval)
    return False


def logged_steps(output_dir: Path) -> int:
    """Lines in metrics.jsonl: with logging_steps 1 and no evaluator, the steps logged so far."""
    try:
        return len((output_dir / "metrics.jsonl").read_text().splitlines())
    except OSError:
        return 0


# -- many short-lived runs: children forked from a server that has already imported embedtrain -----------------------
# A fresh interpreter spends most of a tiny run importing torch and transformers; forking each run from a process that
# has imported them (and run nothing) makes tens of real, killable training processes affordable.

_PRELOAD = ["torch", "transformers", "accelerate", "datasets", "safetensors", "embedtrain.cli", "embedtrain.engine.run"]


def forked_train(recipe: Path, log: Path, *args: str, file_size_limit: int | None = None):
    """Start `embedtrain train RECIPE ARGS` in a child forked from the preloaded server; its output goes to `log`.
    Returns the multiprocessing.Process (pid, exitcode: the exit status, or -9 after SIGKILL). With
    `file_size_limit`, no file the child writes may grow beyond that many bytes (a full disk, for real)."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    process = context.Process(target=_train_child, args=(["train", str(recipe), *args], str(log), file_size_limit),
                              daemon=True)
    process.start()
    return process


def _train_child(argv: list[str], log: str, file_size_limit: int | None) -> None:
    import torch

    descriptor = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(descriptor, 1)
    os.dup2(descriptor, 2)
    torch.set_num_threads(1)  # as the one-thread subprocesses: bit-identical results between runs
    for name, value in child_env().items():
        os.environ.setdefault(name, value)
    if file_size_limit is not None:
        limit_file_size(file_size_limit)
    sys.argv = ["embedtrain", *argv]
    from embedtrain.cli import main

    main()


def limit_file_size(limit: int) -> None:
    """Writes beyond `limit` bytes fail with OSError EFBIG, as on a full disk (SIGXFSZ ignored: it would kill)."""
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
