"""configs/: every shipped accelerate config reads with accelerate's loader and passes embedtrain's checks; a bad
config stops `train --launch` with exit 2 and a message naming the file and key, before any process starts."""

from pathlib import Path
from unittest.mock import patch

import pytest
import torch
import yaml
from helpers.processes import WORKTREE, tiny_recipe
from typer.testing import CliRunner

from embedtrain.cli import app
from embedtrain.commands.launch import check_launch, train_arguments
from embedtrain.commands.launch_config import GPU_TYPES, check_machine, read_launch_config
from embedtrain.errors import LaunchConfigError
from embedtrain.recipe.loading import load_recipe

CONFIGS = sorted((WORKTREE / "configs").glob("*.yaml"))
runner = CliRunner()


def test_the_catalogue_is_complete() -> None:
    assert {path.stem for path in CONFIGS} == {"cpu-2proc", "single-gpu", "multi-gpu", "fsdp", "deepspeed-zero2",
                                                "deepspeed-zero3", "multi-node"}


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_every_shipped_config_reads(path: Path) -> None:
    config = read_launch_config(path)
    assert config.num_processes >= 1
    assert config.mixed_precision is None  # the recipe decides the precision


@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_every_shipped_config_fits_a_machine_with_enough_gpus(path: Path) -> None:
    config = read_launch_config(path)
    with patch("torch.cuda.device_count", return_value=8), patch("importlib.util.find_spec", return_value=object()):
        check_machine(config, path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
@pytest.mark.parametrize("path", CONFIGS, ids=[path.stem for path in CONFIGS])
def test_gpu_configs_are_refused_on_a_machine_without_one(path: Path) -> None:
    config = read_launch_config(path)
    if config.use_cpu:
        check_machine(config, path)
        return
    with pytest.raises(LaunchConfigError, match=rf"{path.name}: distributed_type .* GPUs, and it has 0; train without"):
        check_machine(config, path)


def test_the_shipped_configs_say_what_they_run() -> None:
    by_name = {path.stem: read_launch_config(path) for path in CONFIGS}
    assert by_name["cpu-2proc"].use_cpu and by_name["cpu-2proc"].num_processes == 2
    fsdp = by_name["fsdp"].fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP" and fsdp["fsdp_transformer_layer_cls_to_wrap"]
    assert by_name["deepspeed-zero2"].deepspeed_config["zero_stage"] == 2
    zero3 = by_name["deepspeed-zero3"].deepspeed_config
    assert zero3["zero_stage"] == 3 and zero3["zero3_save_16bit_model"] is True
    assert by_name["multi-node"].num_machines > 1 and by_name["multi-node"].main_process_ip
    assert all(by_name[name].distributed_type.value in GPU_TYPES for name in ("multi-gpu", "fsdp", "multi-node"))


def write(tmp_path: Path, base: str, **changes) -> Path:
    """configs/BASE.yaml with CHANGES (a nested section replaced whole; None removes a key)."""
    config = yaml.safe_load((WORKTREE / "configs" / f"{base}.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path = tmp_path / f"{base}-changed.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


FSDP = yaml.safe_load((WORKTREE / "configs" / "fsdp.yaml").read_text())["fsdp_config"]
BAD = {
    "unknown top-level key": ("cpu-2proc", {"num_procesess": 2}, r"unknown key 'num_procesess' \(did you mean 'num_processes'\?\)"),
    # accelerate itself drops a nested key it does not know without a word
    "unknown fsdp key": ("fsdp", {"fsdp_config": FSDP | {"fsdp_state_dict_typ": "FULL_STATE_DICT"}},
                         r"unknown key fsdp_config.fsdp_state_dict_typ \(did you mean 'fsdp_state_dict_type'\?\)"),
    "unknown deepspeed key": ("deepspeed-zero2", {"deepspeed_config": {"zero_stag": 2}},
                              r"unknown key deepspeed_config.zero_stag \(did you mean 'zero_stage'\?\)"),
    "fsdp version": ("fsdp", {"fsdp_config": FSDP | {"fsdp_version": 3}}, r"fsdp_config.fsdp_version: 3 is not one of 1, 2"),
    "state dict type": ("fsdp", {"fsdp_config": FSDP | {"fsdp_state_dict_type": "FULL"}},
                        r"fsdp_config.fsdp_state_dict_type: 'FULL' is not one of FULL_STATE_DICT"),
    "wrap without a class": ("fsdp", {"fsdp_config": {k: v for k, v in FSDP.items() if k != "fsdp_transformer_layer_cls_to_wrap"}},
                             r"fsdp_transformer_layer_cls_to_wrap is needed with TRANSFORMER_BASED_WRAP"),
    "distributed type": ("multi-gpu", {"distributed_type": "MULTI_GPUS"}, r"MULTI_GPUS"),
    "processes not a number": ("multi-gpu", {"num_processes": "two"}, r"num_processes: 'two' is not an integer"),
    "precision choice": ("multi-gpu", {"mixed_precision": "bf32"}, r"mixed_precision: 'bf32' is not one of no, fp16"),
    "zero stage type": ("deepspeed-zero2", {"deepspeed_config": {"zero_stage": "2"}},
                        r"deepspeed_config.zero_stage: '2' is not an integer"),
    "no distributed type": ("multi-gpu", {"distributed_type": None}, r"distributed_type"),
    "no rendezvous address": ("multi-node", {"main_process_ip": None}, r"main_process_ip is needed with num_machines 2"),
    "other environment": ("multi-gpu", {"compute_environment": "AMAZON_SAGEMAKER"}, r"compute_environment 'AMAZON_SAGEMAKER'"),
    # accelerate would run these CPU processes as plain DDP
    "fsdp on the cpu": ("fsdp", {"use_cpu": True}, r"distributed_type FSDP with use_cpu: true: accelerate runs FSDP only on GPUs"),
    "deepspeed on the cpu": ("deepspeed-zero2", {"use_cpu": True}, r"DEEPSPEED with use_cpu: true"),
    "fsdp1": ("fsdp", {"fsdp_config": FSDP | {"fsdp_version": 1}}, r"fsdp_config.fsdp_version: embedtrain trains with FSDP2"),
    "fsdp1 by default": ("fsdp", {"fsdp_config": {k: v for k, v in FSDP.items() if k != "fsdp_version"}},
                         r"set fsdp_version: 2 \(accelerate's default, when it is missing, is 1\)"),
    "zero3 without gathered saves": ("deepspeed-zero3", {"deepspeed_config": {"zero_stage": 3, "zero3_save_16bit_model": False}},
                                     r"deepspeed_config.zero3_save_16bit_model must be true with zero_stage 3"),
    "deepspeed json": ("deepspeed-zero2", {"deepspeed_config": {"deepspeed_config_file": "missing/zero2.json"}},
                       r"deepspeed_config.deepspeed_config_file 'missing/zero2.json' cannot be read as JSON"),
}


@pytest.mark.parametrize(("base", "changes", "message"), BAD.values(), ids=BAD.keys())
def test_a_bad_config_is_named_with_its_key(tmp_path: Path, base: str, changes: dict, message: str) -> None:
    path = write(tmp_path, base, **changes)
    with pytest.raises(LaunchConfigError, match=rf"{path.name}: .*{message}"):
        read_launch_config(path)


def test_a_config_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- MULTI_GPU\n")
    with pytest.raises(LaunchConfigError, match="list.yaml: an accelerate config is a mapping"):
        read_launch_config(path)


def test_deepspeed_not_installed_is_named(tmp_path: Path) -> None:
    path = WORKTREE / "configs" / "deepspeed-zero3.yaml"
    with (patch("torch.cuda.device_count", return_value=2), patch("importlib.util.find_spec", return_value=None),
          pytest.raises(LaunchConfigError, match="deepspeed-zero3.yaml: .*pip install deepspeed")):
        check_machine(read_launch_config(path), path)


@pytest.fixture
def recipe(tmp_path: Path, tiny_checkpoint: Path, sts_csv: Path):
    return load_recipe(tiny_recipe(tmp_path, tiny_checkpoint, sts_csv), [])


def test_the_fsdp_layer_class_must_be_the_encoders(tmp_path: Path, recipe) -> None:
    with patch("torch.cuda.device_count", return_value=2):
        check_launch(WORKTREE / "configs" / "fsdp.yaml", recipe)  # BertLayer: the tiny BERT's
        path = write(tmp_path, "fsdp", fsdp_config=FSDP | {"fsdp_transformer_layer_cls_to_wrap": "XLMRobertaLayer"})
        with pytest.raises(LaunchConfigError, match=r"fsdp-changed.yaml: fsdp_config.fsdp_transformer_layer_cls_to_wrap:"
                                                    r" XLMRobertaLayer is not a class of bert models .*BertLayer"):
            check_launch(path, recipe)


def test_the_recipe_decides_the_precision(tmp_path: Path, recipe) -> None:
    path = write(tmp_path, "cpu-2proc", mixed_precision="bf16")
    with pytest.raises(LaunchConfigError, match=r"mixed_precision 'bf16', but the recipe trains in 'no' "
                                                r"\(training.precision: auto\)"):
        check_launch(path, recipe)


def test_launched_processes_get_the_command_without_launch() -> None:
    arguments = train_arguments(Path("r.yaml"), ["training.max_steps=2"], True, Path("out"), ["m=0.5"], verbose=True)
    assert arguments == ["--verbose", "train", "r.yaml", "--set", "training.max_steps=2", "--fail-under", "m=0.5",
                         "--output-dir", "out", "--resume"]


def test_train_launch_with_a_bad_config_exits_2_before_starting_anything(tmp_path: Path, tiny_checkpoint: Path,
                                                                        sts_csv: Path) -> None:
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv)
    config = write(tmp_path, "cpu-2proc", num_procesess=2)
    with patch("embedtrain.commands.launch.launch_training") as launch:
        result = runner.invoke(app, ["train", str(recipe), "--launch", str(config)])
    assert result.exit_code == 2, result.output
    assert "unknown key 'num_procesess'" in result.output and "Traceback" not in result.output
    launch.assert_not_called()
    assert not (tmp_path / "run").exists()


def test_train_launch_with_a_bad_recipe_exits_2_before_starting_anything(tmp_path: Path, tiny_checkpoint: Path,
                                                                        sts_csv: Path) -> None:
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv)
    with patch("embedtrain.commands.launch.launch_training") as launch:
        result = runner.invoke(app, ["train", str(recipe), "--set", "training.batch_sise=4",
                                     "--launch", str(WORKTREE / "configs" / "cpu-2proc.yaml")])
    assert result.exit_code == 2, result.output
    assert "batch_sise" in result.output
    launch.assert_not_called()


def test_train_launch_inside_a_launched_process_is_refused(tmp_path: Path, tiny_checkpoint: Path, sts_csv: Path,
                                                           monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "0")
    recipe = tiny_recipe(tmp_path, tiny_checkpoint, sts_csv)
    result = runner.invoke(app, ["train", str(recipe), "--launch", str(WORKTREE / "configs" / "cpu-2proc.yaml")])
    assert result.exit_code == 2 and "drop --launch" in result.output, result.output


def test_a_zero3_json_must_gather_the_weights_when_saving(tmp_path: Path) -> None:
    ds_json = tmp_path / "zero3.json"
    ds_json.write_text('{"zero_optimization": {"stage": 3}}')
    path = write(tmp_path, "deepspeed-zero3", deepspeed_config={"deepspeed_config_file": str(ds_json)})
    with pytest.raises(LaunchConfigError, match=r"zero_optimization.stage 3 needs .stage3_gather_16bit_weights_on_model_save"):
        read_launch_config(path)
    ds_json.write_text('{"zero_optimization": {"stage": 3, "stage3_gather_16bit_weights_on_model_save": true}}')
    read_launch_config(path)


def test_sharding_refuses_cached_losses_and_several_datasets(tmp_path: Path, tiny_checkpoint: Path, triplet_csv: Path) -> None:
    """FSDP and ZeRO-3 need the same forward calls on every process: a cached loss replays the model in its backward
    pass, and several datasets give processes different losses at the same step; DDP takes both."""
    recipe_path = tiny_recipe(tmp_path, tiny_checkpoint, triplet_csv)
    config = yaml.safe_load(recipe_path.read_text())
    config["losses"] = {"main": {"type": "MatryoshkaLoss", "matryoshka_dims": [32, 16],
                                 "loss": {"type": "CachedMultipleNegativesRankingLoss"}}}
    config["datasets"] = {"train": {"triplets": {"source": str(triplet_csv)}}}
    recipe_path.write_text(yaml.safe_dump(config))
    cached = load_recipe(recipe_path, [])
    config["losses"]["main"] = {"type": "MultipleNegativesRankingLoss"}
    config["datasets"]["train"]["again"] = {"source": str(triplet_csv)}
    recipe_path.write_text(yaml.safe_dump(config))
    two_datasets = load_recipe(recipe_path, [])
    with patch("torch.cuda.device_count", return_value=8), patch("importlib.util.find_spec", return_value=object()):
        for name in ("fsdp", "deepspeed-zero3"):
            path = WORKTREE / "configs" / f"{name}.yaml"
            with pytest.raises(LaunchConfigError, match=rf"{name}.yaml: .* losses main are cached"):
                check_launch(path, cached)
            with pytest.raises(LaunchConfigError, match=rf"{name}.yaml: .* trains 2 datasets"):
                check_launch(path, two_datasets)
        for name in ("multi-gpu", "deepspeed-zero2"):
            check_launch(WORKTREE / "configs" / f"{name}.yaml", cached)
            check_launch(WORKTREE / "configs" / f"{name}.yaml", two_datasets)
