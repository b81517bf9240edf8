"""`embedtrain push`: upload a saved model (with its card, and optionally its run's checkpoints) to a Hub repo."""

from dataclasses import dataclass
from pathlib import Path

from embedtrain.engine.checkpoint import CheckpointManager
from embedtrain.models.publish import HubError, HubRepo, HubTarget, Pushed, check_model_folder

DEFAULT_MESSAGE = "Upload model with embedtrain"


@dataclass(frozen=True)
class PushRequest:
    model_dir: Path
    repo_id: str
    private: bool = False
    revision: str | None = None
    commit_message: str | None = None
    checkpoints: bool = False  # also the completed checkpoints of the run whose final model model_dir is


@dataclass(frozen=True)
class PushOutcome:
    model: Pushed
    checkpoints: Pushed | None  # None when not asked
    checkpoint_names: list[str]


def run_push(request: PushRequest) -> PushOutcome:
    """Check everything that needs no network (the folder, the checkpoints, the repo id, a token), then push the model
    to the repo's root in one commit and the checkpoints to checkpoints/ in a second one. HubError (exit 2) on a
    failure a user can fix."""
    check_model_folder(request.model_dir)
    checkpoints = run_checkpoints(request.model_dir) if request.checkpoints else []
    repo = HubRepo(HubTarget(request.repo_id, request.private, request.revision))
    message = request.commit_message or DEFAULT_MESSAGE
    model = repo.push(request.model_dir, message)
    pushed_checkpoints = None
    if checkpoints:
        # Only completed checkpoints: not the hidden staging folder of one being written.
        pushed_checkpoints = repo.push(checkpoints[0].parent, f"{message} (checkpoints)", path_in_repo="checkpoints",
                                       allow_patterns=[f"{path.name}/*" for path in checkpoints])
    return PushOutcome(model, pushed_checkpoints, [path.name for path in checkpoints])


def run_checkpoints(model_dir: Path) -> list[Path]:
    """The completed checkpoints of the run `model_dir` is the final model of (RUN/final -> RUN/checkpoints/*)."""
    manager = CheckpointManager(model_dir.resolve().parent, save_total_limit=None)
    found = manager.completed()
    if not found:
        raise HubError(f"--checkpoints: no completed checkpoint in {manager.root}; it pushes the checkpoints of the "
                       f"run whose final model MODEL_DIR is (RUN/final -> RUN/checkpoints/): give RUN/final, or "
                       f"leave --checkpoints out")
    return found
