"""A run's output directory: checked before anything is loaded, held by one run at a time, and given the resolved
recipe once the recipe, its data and its model have passed every check (a rejected recipe leaves nothing there)."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from embedtrain.engine.checkpoint import CheckpointManager
from embedtrain.engine.lock import OutputDirLock
from embedtrain.engine.run_files import FINAL, RESOLVED_RECIPE
from embedtrain.errors import RecipeError
from embedtrain.recipe.loading import dump_recipe
from embedtrain.recipe.schema import Recipe

logger = logging.getLogger(__name__)


def check_output_dir(output_dir: Path, resume: bool) -> None:
    """Refuse a path that is a file, and a new run into an old one (or a resume of a run that cannot continue)."""
    if output_dir.exists() and not output_dir.is_dir():
        raise RecipeError(f"training.output_dir: {output_dir} is a file, not a directory; choose another output "
                          f"directory (--output-dir) or move the file away")
    finished = (output_dir / FINAL).exists()
    has_checkpoint = CheckpointManager(output_dir, None).latest() is not None
    if (finished or has_checkpoint) and not resume:
        raise RecipeError(f"training.output_dir: {output_dir} already holds a training run; pass --resume to continue "
                          f"it, or choose another output directory (--output-dir)")
    if resume and finished and not has_checkpoint:
        raise RecipeError(f"--resume: the run in {output_dir} already finished and kept no checkpoint to resume from "
                          f"(set training.save_steps to keep some); choose another output directory to train again")


@contextmanager
def locked_output_dir(output_dir: Path, accelerator: Accelerator) -> Iterator[None]:
    """The main process holds the directory's lock for the duration (creating the directory); every process learns
    whether it could, so that all stop together rather than wait for a process that stopped. A directory created
    here and still empty at the end (a run rejected by its checks) is removed again."""
    created = not output_dir.exists()
    lock = OutputDirLock(output_dir)
    refusal = [None]
    if accelerator.is_main_process:
        try:
            lock.acquire()
        except RecipeError as error:
            refusal = [str(error)]
        except OSError as error:  # the first write of a run: permissions, a file in the path
            refusal = [f"training.output_dir: cannot write {error.filename or output_dir} ({error.strerror or error}); "
                       f"choose a directory you can write to (--output-dir)"]
    if accelerator.num_processes > 1:
        broadcast_object_list(refusal)
    if refusal[0] is not None:
        raise RecipeError(refusal[0])
    try:
        yield
    finally:
        lock.release()
        if created and accelerator.is_main_process and output_dir.is_dir() and not any(output_dir.iterdir()):
            output_dir.rmdir()


def record_resolved_recipe(output_dir: Path, recipe: Recipe, resume: bool, accelerator: Accelerator) -> None:
    """Write the recipe as resolved (defaults and overrides applied); on resume, say if it changed."""
    resolved = dump_recipe(recipe)
    recipe_file = output_dir / RESOLVED_RECIPE
    if resume and recipe_file.exists() and recipe_file.read_text(encoding="utf-8") != resolved:
        logger.warning("the recipe differs from %s, which the run started with; continuing with the new one", recipe_file)
    if accelerator.is_main_process:
        recipe_file.write_text(resolved, encoding="utf-8")
