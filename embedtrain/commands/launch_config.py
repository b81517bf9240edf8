"""`embedtrain train --launch CONFIG`: an accelerate launch config, checked before any process is started.

accelerate reads a config file in each launch and ignores a nested key it does not know (a misspelt
`fsdp_config.fsdp_state_dict_typ` is silently dropped); its errors come from every process at once. Here the file is
read with accelerate's own loader and its nested keys checked against accelerate's own launch options, then checked
against this machine (GPUs, DeepSpeed) and the recipe, so that a bad config stops once, naming the file and key.
"""

import importlib.util
import json
from pathlib import Path

import yaml

from embedtrain.errors import LaunchConfigError, did_you_mean
from embedtrain.recipe.schema import Recipe

GPU_TYPES = ("MULTI_GPU", "FSDP", "DEEPSPEED")
"""distributed_type values that put the processes on GPUs (unless `use_cpu: true`)."""

# accelerate copies the entries of these sections onto its launch options, adding this prefix when a key lacks it
# (accelerate/commands/launch.py, _validate_launch_command).
SECTION_PREFIX = {"fsdp_config": "fsdp_", "fp8_config": "fp8_", "dynamo_config": "dynamo_", "deepspeed_config": "",
                  "megatron_lm_config": "", "mpirun_config": "", "parallelism_config": ""}


def read_launch_config(path: Path):
    """The config as accelerate's ClusterConfig; LaunchConfigError naming the file and key for a file accelerate
    cannot read, an unknown key (top level or nested) or a value outside its choices."""
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    if not path.is_file():
        raise LaunchConfigError(f"--launch {path}: no such file; copy one of the repository's configs/ "
                                f"(cpu-2proc.yaml, multi-gpu.yaml, fsdp.yaml, ...)")
    try:
        raw = json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LaunchConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'} ({error})") from None
    if not isinstance(raw, dict):
        raise LaunchConfigError(f"{path}: an accelerate config is a mapping of keys (compute_environment, "
                                f"distributed_type, num_processes, ...), not {type(raw).__name__}")
    problems = _unknown_keys(raw, list(ClusterConfig.__dataclass_fields__))
    if problems:
        raise LaunchConfigError(f"{path}: " + "; ".join(problems))
    if raw.get("compute_environment", "LOCAL_MACHINE") != "LOCAL_MACHINE":
        raise LaunchConfigError(f"{path}: compute_environment {raw['compute_environment']!r}: --launch starts "
                                f"processes on this machine (LOCAL_MACHINE); use `accelerate launch` for others")
    try:
        config = load_config_from_file(str(path))
    except (ValueError, TypeError) as error:  # a missing distributed_type, an unknown distributed_type value
        raise LaunchConfigError(f"{path}: {error}") from None
    _check_values(config, path)
    return config


def _unknown_keys(raw: dict, top_level: list[str]) -> list[str]:
    """Problems of the raw config's keys and values, each naming its key: unknown keys (nested ones by accelerate's
    launch options, as accelerate reads them), values outside an option's choices or of the wrong type."""
    from accelerate.commands.launch import launch_command_parser

    options = {action.dest: action for action in launch_command_parser()._actions}
    problems = []
    for key, value in raw.items():
        if key in SECTION_PREFIX:
            continue
        if key not in top_level and key not in ("fp16", "dynamo_backend"):  # old spellings accelerate converts
            problems.append(f"unknown key {key!r}{did_you_mean(key, top_level)}")
        elif key in options and (problem := _value_problem(options[key], value)):
            problems.append(f"{key}: {problem}")
    for section, prefix in SECTION_PREFIX.items():
        entries = raw.get(section) or {}
        if not isinstance(entries, dict):
            problems.append(f"{section}: a mapping of options, not {type(entries).__name__}")
            continue
        known = [name for name in options if name.startswith(prefix)] if prefix else list(options)
        for key, value in entries.items():
            option = options.get(key if not prefix or key.startswith(prefix) else prefix + key)
            if option is None:
                problems.append(f"unknown key {section}.{key}{did_you_mean(key, known)}")
            elif problem := _value_problem(option, value):
                problems.append(f"{section}.{key}: {problem}")
    return problems


def _value_problem(option, value) -> str | None:
    """Why `value` does not fit accelerate's launch option `option` (its choices, a number's type); None if it does."""
    if value is None:
        return None
    if option.choices and str(value) not in option.choices:
        return f"{value!r} is not one of {', '.join(map(str, option.choices))}"
    wanted = {int: "an integer", float: "a number"}.get(option.type)
    if wanted and (isinstance(value, bool) or not isinstance(value, (int, float) if option.type is float else int)):
        return f"{value!r} is not {wanted}"
    return None


def _check_values(config, path: Path) -> None:
    from accelerate.utils.constants import FSDP_AUTO_WRAP_POLICY, FSDP_STATE_DICT_TYPE

    fsdp = config.fsdp_config
    for key, choices in (("fsdp_auto_wrap_policy", FSDP_AUTO_WRAP_POLICY), ("fsdp_state_dict_type", FSDP_STATE_DICT_TYPE)):
        if key in fsdp and fsdp[key] not in choices:
            raise LaunchConfigError(f"{path}: fsdp_config.{key}: {fsdp[key]!r} is not one of {', '.join(choices)}")
    if fsdp.get("fsdp_auto_wrap_policy") == "TRANSFORMER_BASED_WRAP" and not fsdp.get("fsdp_transformer_layer_cls_to_wrap"):
        raise LaunchConfigError(f"{path}: fsdp_config.fsdp_transformer_layer_cls_to_wrap is needed with "
                                f"TRANSFORMER_BASED_WRAP: the encoder's layer class, e.g. BertLayer")
    kind = config.distributed_type.value
    if config.use_cpu and kind in ("FSDP", "DEEPSPEED"):
        # accelerate enters FSDP and DeepSpeed only on accelerators (accelerate/state.py): with use_cpu its processes
        # would train as plain DDP while the config says sharded.
        raise LaunchConfigError(f"{path}: distributed_type {kind} with use_cpu: true: accelerate runs {kind} only on "
                                f"GPUs, and on the CPU its processes would silently train unsharded (DDP); use "
                                f"configs/cpu-2proc.yaml for several CPU processes")
    if kind == "FSDP" and str(fsdp.get("fsdp_version", 1)) != "2":
        # accelerate's default is FSDP1 (fsdp_version 1), whose saving and evaluation embedtrain does not implement.
        raise LaunchConfigError(f"{path}: fsdp_config.fsdp_version: embedtrain trains with FSDP2: set fsdp_version: 2 "
                                f"(accelerate's default, when it is missing, is 1)")
    if config.num_processes < 1:
        raise LaunchConfigError(f"{path}: num_processes must be given (a number >= 1)")
    if config.num_machines > 1 and not config.main_process_ip:
        raise LaunchConfigError(f"{path}: main_process_ip is needed with num_machines {config.num_machines}: the "
                                f"address of machine 0, reachable from every machine")
    ds_file = config.deepspeed_config.get("deepspeed_config_file")
    if ds_file:
        try:
            json.loads(Path(ds_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise LaunchConfigError(f"{path}: deepspeed_config.deepspeed_config_file {ds_file!r} cannot be read as "
                                    f"JSON ({error}); the path is relative to the directory you launch from") from None
    if kind == "DEEPSPEED" and (problem := _zero3_save_problem(config.deepspeed_config)):
        raise LaunchConfigError(f"{path}: {problem}")


def _zero3_save_problem(deepspeed: dict) -> str | None:
    """Why a DeepSpeed config cannot save a whole model under ZeRO-3 (None when it can, or is not ZeRO-3): the
    checkpoints' model/ and final/ are written from the 16-bit weights gathered from every process."""
    ds_file = deepspeed.get("deepspeed_config_file")
    if ds_file:
        zero = json.loads(Path(ds_file).read_text(encoding="utf-8")).get("zero_optimization", {})
        if zero.get("stage") == 3 and not zero.get("stage3_gather_16bit_weights_on_model_save"):
            return (f"deepspeed_config.deepspeed_config_file {ds_file}: zero_optimization.stage 3 needs "
                    f"\"stage3_gather_16bit_weights_on_model_save\": true (saves gather the whole model)")
    elif deepspeed.get("zero_stage") == 3 and not deepspeed.get("zero3_save_16bit_model"):
        return ("deepspeed_config.zero3_save_16bit_model must be true with zero_stage 3: checkpoints and final/ "
                "are written from the 16-bit weights gathered from every process")
    return None


def check_machine(config, path: Path) -> None:
    """LaunchConfigError when this machine cannot run `config`: GPUs it needs and has not, DeepSpeed not installed."""
    import torch

    kind = config.distributed_type.value
    needs_gpu = not config.use_cpu and (kind in GPU_TYPES or config.gpu_ids not in (None, "all"))
    if needs_gpu:
        available = torch.cuda.device_count()
        wanted = config.num_processes // max(config.num_machines, 1) if kind in GPU_TYPES else 1
        if available < wanted:
            fix = ("train without --launch to use the CPU, or --launch configs/cpu-2proc.yaml (use_cpu: true) for "
                   "several processes on the CPU") if available == 0 else "lower num_processes"
            raise LaunchConfigError(f"{path}: distributed_type {kind} runs {wanted} process(es) on this machine's "
                                    f"GPUs, and it has {available}; {fix}")
    if kind == "DEEPSPEED" and importlib.util.find_spec("deepspeed") is None:
        raise LaunchConfigError(f"{path}: distributed_type DEEPSPEED needs the deepspeed package, which is not "
                                f"installed: pip install deepspeed")


def check_against_recipe(config, path: Path, recipe: Recipe, precision: str) -> None:
    """LaunchConfigError where the config and the recipe disagree. `precision`: the recipe's precision as accelerate
    names it on this machine (engine.trainer.resolve_precision)."""
    if config.mixed_precision not in (None, "no") and config.mixed_precision != precision:
        raise LaunchConfigError(f"{path}: mixed_precision {config.mixed_precision!r}, but the recipe trains in "
                                f"{precision!r} (training.precision: {recipe.training.precision}); the recipe decides: "
                                f"remove mixed_precision from the config or set training.precision")
    steps = config.deepspeed_config.get("gradient_accumulation_steps")
    if steps not in (None, "auto") and int(steps) != recipe.training.gradient_accumulation_steps:
        raise LaunchConfigError(f"{path}: deepspeed_config.gradient_accumulation_steps {steps}, but the recipe's "
                                f"training.gradient_accumulation_steps is {recipe.training.gradient_accumulation_steps}; "
                                f"remove it from the config (the recipe's is used)")
    if _shards_parameters(config):
        kind = config.distributed_type.value
        cached = sorted(name for name, loss in recipe.losses.items() if "'Cached" in repr(loss.model_dump()))
        if cached:
            raise LaunchConfigError(f"{path}: {kind} shards the parameters, and losses {', '.join(cached)} are cached "
                                    f"(GradCache): their backward pass replays the model outside the sharded module's "
                                    f"hooks; use the uncached loss (with training.gradient_checkpointing for memory) "
                                    f"or configs/multi-gpu.yaml (DDP)")
        if len(recipe.datasets.train) > 1:
            raise LaunchConfigError(f"{path}: {kind} shards the parameters, and the recipe trains "
                                    f"{len(recipe.datasets.train)} datasets: processes would run different datasets' "
                                    f"losses at the same step; train one dataset, or use configs/multi-gpu.yaml (DDP)")
    layer = config.fsdp_config.get("fsdp_transformer_layer_cls_to_wrap")
    if layer and (problem := _layer_class_problem(layer, recipe)):
        raise LaunchConfigError(f"{path}: fsdp_config.fsdp_transformer_layer_cls_to_wrap: {problem}")


def _shards_parameters(config) -> bool:
    """FSDP, or DeepSpeed ZeRO-3 (as engine.whole_weights.shards_parameters decides inside the processes)."""
    kind = config.distributed_type.value
    if kind == "DEEPSPEED":
        ds_file = config.deepspeed_config.get("deepspeed_config_file")
        if ds_file:
            return json.loads(Path(ds_file).read_text(encoding="utf-8")).get("zero_optimization", {}).get("stage") == 3
        return config.deepspeed_config.get("zero_stage") == 3
    return kind == "FSDP"


def _layer_class_problem(names: str, recipe: Recipe) -> str | None:
    """Why a layer class to wrap is not one of the recipe's encoder; None when it is, or when the encoder's
    architecture cannot be read here (the model's own loading reports that)."""
    import sys

    from transformers import AutoConfig, AutoModel

    model = recipe.model
    if model.static is not None:
        return "a static embedding model has no transformer layers: use fsdp_auto_wrap_policy NO_WRAP"
    try:
        encoder_config = AutoConfig.from_pretrained(model.base, revision=model.revision,
                                                    trust_remote_code=model.trust_remote_code)
        module = sys.modules[AutoModel._model_mapping[type(encoder_config)].__module__]
    except Exception:  # no network, a sentence-transformers folder without a root config.json, remote code
        return None
    missing = [name.strip() for name in names.split(",") if not hasattr(module, name.strip())]
    if not missing:
        return None
    layers = sorted(name for name in dir(module) if name.endswith("Layer"))
    return (f"{', '.join(missing)} is not a class of {encoder_config.model_type} models (model.base {model.base}); "
            f"their layer classes: {', '.join(layers) or 'none found'}")
