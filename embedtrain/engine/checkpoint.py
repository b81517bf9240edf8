"""Checkpoints: written atomically, found again on resume, rotated by `save_total_limit`.

A checkpoint is `checkpoints/checkpoint-<step>/` holding `model/` (a loadable model in the
sentence-transformers layout), `state/` (accelerate's optimizer, scheduler, RNG and model state)
and `trainer_state.json`. It is assembled in a hidden temporary folder and renamed into place
only when complete, so a killed run never leaves a half-written checkpoint that resume would pick.
"""

import errno
import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainerState:
    """Where training stands: enough, with accelerate's state, to continue exactly."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch
    batches_in_epoch: int = 0  # batches of the current epoch already consumed
    best_metric: float | None = None
    best_checkpoint: str | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "TrainerState":
        return cls(**json.loads(path.read_text(encoding="utf-8")))


class CheckpointManager:
    def __init__(self, output_dir: Path, save_total_limit: int | None) -> None:
        self.root = output_dir / "checkpoints"
        self.save_total_limit = save_total_limit

    def path_for(self, step: int) -> Path:
        return self.root / f"checkpoint-{step:07d}"

    def staging_path(self, step: int) -> Path:
        return self.root / f".checkpoint-{step:07d}.partial"

    def remove_partial(self) -> None:
        """Remove leftovers of a killed run: a checkpoint it did not finish, or one it was replacing or deleting."""
        for leftover in self.root.glob(".checkpoint-*"):
            shutil.rmtree(leftover, ignore_errors=True)

    def completed(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.exists():
            return []
        found = [p for p in self.root.iterdir() if CHECKPOINT_PATTERN.match(p.name) and (p / STATE_FILE).exists()]
        return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.match(p.name).group(1)))

    def latest(self) -> Path | None:
        completed = self.completed()
        return completed[-1] if completed else None

    def publish(self, step: int) -> Path:
        """Atomically move the finished staging folder into place."""
        final = self.path_for(step)
        if final.exists():  # the same step saved again (e.g. end of training right after a periodic save)
            self._remove(final)
        self.staging_path(step).rename(final)
        return final

    def _remove(self, checkpoint: Path) -> None:
        """Delete a published checkpoint: first hidden by a rename, so that a kill during the deletion never leaves
        a half-deleted checkpoint under a published name."""
        hidden = checkpoint.with_name(f".{checkpoint.name}.removing")
        shutil.rmtree(hidden, ignore_errors=True)
        checkpoint.rename(hidden)
        shutil.rmtree(hidden)

    def rotate(self, keep: Path | None) -> None:
        """Delete the oldest checkpoints beyond `save_total_limit`, never `keep` (the best one)."""
        if self.save_total_limit is None:
            return
        completed = self.completed()
        removable = [p for p in completed if keep is None or p.resolve() != keep.resolve()]
        excess = len(completed) - self.save_total_limit
        for path in removable[:max(excess, 0)]:
            logger.info("removing old checkpoint %s", path)
            self._remove(path)


# -- when a checkpoint or the final model cannot be written or read back --------------------------------------

DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def write_failure(what: str, directory: Path, error: OSError | None) -> str:
    """'cannot write X in DIR: disk full (...)' (or the OS's reason); `error` is None on the processes that wrote."""
    if error is None:
        return f"cannot write {what} in {directory}: another process failed to write its part"
    reason = "disk full" if error.errno in DISK_FULL else "check its permissions"
    return f"cannot write {what} in {directory}: {reason} ({error.strerror or error}: {error.filename or directory})"


def as_write_error(error: Exception) -> OSError:
    """`error` as the OSError of a failed write, or raised again if it is something else. safetensors reports a
    failed write as its own error, "I/O error: File too large (os error 27)"."""
    if isinstance(error, OSError):
        return error
    found = re.search(r"I/O error: (.*) \(os error (\d+)\)", str(error))
    if found is None:
        raise error
    return OSError(int(found.group(2)), found.group(1))


def name_or_none(path: Path | None) -> str:
    return path.name if path is not None else "none"


def check_safetensors(folder: Path) -> None:
    """Raise if a .safetensors file under `folder` is truncated or malformed (its header is checked against its
    size; the tensors are not read)."""
    from safetensors import safe_open

    for path in folder.rglob("*.safetensors"):
        with safe_open(str(path), framework="pt") as tensors:
            tensors.keys()


def fill_optimizer_state(optimizer) -> None:
    """Give every parameter without optimizer state (none has had a gradient yet, e.g. an encoder's unused pooler) the
    state it would start with. Under FSDP2, accelerate saves and loads the optimizer through torch's distributed
    checkpoint, whose loader first initialises the state of every parameter and then requires each in the checkpoint
    ("Missing key in checkpoint state_dict: optimizer.state.<param>.step"). One step with zero gradients and a zero
    learning rate on those parameters only, as torch's own initialisation does, then `step` counters back at 0: the
    state a first real gradient would have found. Call it with the gradients cleared (after zero_grad)."""
    import torch

    empty = [parameter for group in optimizer.param_groups for parameter in group["params"]
             if parameter.requires_grad and parameter not in optimizer.state]
    if not empty:
        return
    for parameter in empty:
        parameter.grad = torch.zeros_like(parameter)
    learning_rates = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    optimizer.step()
    for group, learning_rate in zip(optimizer.param_groups, learning_rates):
        group["lr"] = learning_rate
    for parameter in empty:
        parameter.grad = None
        step = optimizer.state[parameter].get("step")
        if isinstance(step, torch.Tensor):
            step.zero_()
        elif step is not None:
            optimizer.state[parameter]["step"] = 0
