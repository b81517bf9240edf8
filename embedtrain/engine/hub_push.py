"""`training.push_to_hub`: the run's checkpoints and final model pushed to the Hub while it trains.

The pushes ride the trainer's observer events, which fire on the main process only: `on_checkpoint` after a
checkpoint is published (and rotated), `on_train_end` after final/ and its card are written.

Checkpoint pushes are synchronous: training waits for the upload. The files pushed are then exactly the checkpoint
as saved, never one that `save_total_limit` deletes, or the next save rewrites, while an upload reads it; the other
processes wait at the checkpoint's barrier meanwhile, so a push must end within the process group's timeout (torch's
default: 10 minutes with NCCL, 30 with gloo; an embedding model's checkpoint is a few GB at most). A failed checkpoint push is a warning: the checkpoint is safe on disk, and training goes on. A failed
final push is an error (exit 2 for a missing or refused token, or no network) raised after final/ is saved, so that
a job that trains to publish does not report success when nothing was published.
"""

import logging
from pathlib import Path

from embedtrain.engine.observer import TrainingObserver
from embedtrain.errors import EmbedtrainError
from embedtrain.models.publish import HubError, HubRepo, HubTarget
from embedtrain.recipe.training import PushToHubConfig

logger = logging.getLogger(__name__)


class HubPushingObserver:
    """Forwards every training event to `inner`; then pushes each checkpoint (with `every_save`) and the final model.

    Created before training, so that a bad repo id, a missing token or HF_HUB_OFFLINE fails the run before any
    training (HubError)."""

    def __init__(self, inner: TrainingObserver, config: PushToHubConfig) -> None:
        self.inner, self.every_save = inner, config.every_save
        # No upload display of huggingface_hub's: it would write through the console's live progress bar.
        self.repo = HubRepo(HubTarget(config.repo_id, config.private, config.revision), show_progress=False)

    def __getattr__(self, hook: str):
        # Every hook this class does not handle, including any added to TrainingObserver later, goes to `inner`.
        if "inner" not in self.__dict__:  # not built yet (copy, pickle): no recursion through self.inner
            raise AttributeError(hook)
        return getattr(self.inner, hook)

    def on_checkpoint(self, path: Path) -> None:
        self.inner.on_checkpoint(path)
        if not self.every_save:
            return
        try:
            pushed = self.repo.push(path, f"Upload {path.name} with embedtrain", path_in_repo=f"checkpoints/{path.name}")
        except Exception as error:  # any failure: the checkpoint is on disk, training goes on
            reason = str(error) if isinstance(error, EmbedtrainError) else f"{type(error).__name__}: {error}"
            logger.warning("push of %s to the Hub failed, training continues: %s", path.name, reason)
            return
        logger.info("pushed %s to %s (commit %s)", path.name, pushed.url, pushed.commit)

    def on_train_end(self, final_dir: Path, metrics: dict[str, float]) -> None:
        self.inner.on_train_end(final_dir, metrics)
        try:
            pushed = self.repo.push(final_dir, "Upload the trained model with embedtrain")
        except HubError as error:
            raise HubError(f"{error}. The model is saved in {final_dir}: push it with `embedtrain push {final_dir} "
                           f"{self.repo.target.repo_id}`", error.exit_code) from None
        logger.info("pushed the model to %s (commit %s)", pushed.url, pushed.commit)


def check_hub_push(config: PushToHubConfig | None) -> None:
    """What `training.push_to_hub` needs before any training, without a request (for --dry-run): a valid repo id, the
    Hub not switched off by HF_HUB_OFFLINE, and a token. HubError otherwise."""
    if config is not None:
        HubRepo(HubTarget(config.repo_id, config.private, config.revision), show_progress=False)


def with_hub_push(observer: TrainingObserver, config: PushToHubConfig | None) -> TrainingObserver:
    """`observer`, pushing to the Hub as `config` asks. Built on every process, so that all stop together on a
    missing token; only the main process receives events, so only it pushes."""
    if config is None:
        return observer
    return HubPushingObserver(observer, config)  # type: ignore[return-value]  # duck-typed: forwards every hook
