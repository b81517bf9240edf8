"""Start `embedtrain train` in the processes an accelerate launch config describes, through accelerate's own launch
command (the same as `accelerate launch --config_file CONFIG -m embedtrain train ...`), and exit as they did."""

import os
import subprocess
from pathlib import Path

from embedtrain.commands.launch_config import check_against_recipe, check_machine, read_launch_config
from embedtrain.engine.trainer import resolve_precision
from embedtrain.errors import ExitCode, LaunchConfigError
from embedtrain.recipe.schema import Recipe


def refuse_nested_launch() -> None:
    """LaunchConfigError inside a launched process: `--launch` there would start processes from every process."""
    if "LOCAL_RANK" in os.environ:  # set by torchrun (and so accelerate launch) in each process it starts
        raise LaunchConfigError("--launch inside a process that a launcher started (LOCAL_RANK is set): drop --launch "
                                "when running under `accelerate launch` or torchrun")


def launch_training(config_path: Path, use_cpu: bool, train_args: list[str]) -> int:
    """Run `embedtrain TRAIN_ARGS` (train_arguments: without --launch, so that no process launches again) in the
    config's processes; the exit code of the first process that failed, 0 when all succeeded."""
    from accelerate.commands.launch import launch_command, launch_command_parser
    from accelerate.utils import patch_environment
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = launch_command_parser().parse_args(
        ["--config_file", str(config_path), "--module", "embedtrain", *train_args])
    # Without it, processes started by torchrun on a machine without a GPU find no backend (accelerate picks gloo
    # only when told the run is on the CPU), and on a machine with GPUs they would take the GPUs.
    environment = {"ACCELERATE_USE_CPU": "true"} if use_cpu else {}
    try:
        with patch_environment(**environment):
            launch_command(args)
    except ChildFailedError as error:  # torchrun (several processes): the first failure's code
        return _exit_code(error.get_first_failure()[1].exitcode)
    except subprocess.CalledProcessError as error:  # one process, or DeepSpeed's launcher
        return _exit_code(error.returncode)
    return 0


def _exit_code(code: int) -> int:
    """A process killed by a signal (a negative code) is a runtime failure."""
    return code if code > 0 else int(ExitCode.RUNTIME_FAILURE)


def check_launch(config_path: Path, recipe: Recipe):
    """The launch config, read and checked against accelerate's options, this machine and the recipe
    (LaunchConfigError otherwise)."""
    config = read_launch_config(config_path)
    check_machine(config, config_path)
    check_against_recipe(config, config_path, recipe, resolve_precision(recipe.training.precision))
    return config


def train_arguments(recipe: Path, overrides: list[str], resume: bool, output_dir: Path | None,
                    fail_under: list[str], verbose: bool) -> list[str]:
    """The command line of `embedtrain train` each launched process runs: the parent's, without --launch."""
    arguments = ["--verbose"] if verbose else []
    arguments += ["train", str(recipe)]
    for item in overrides:
        arguments += ["--set", item]
    for item in fail_under:
        arguments += ["--fail-under", item]
    if output_dir is not None:
        arguments += ["--output-dir", str(output_dir)]
    if resume:
        arguments.append("--resume")
    return arguments
