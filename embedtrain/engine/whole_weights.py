"""The whole model's weights for writing it, under every strategy: one save path for one process, DDP, FSDP2 and
DeepSpeed ZeRO-3.

Under FSDP2 and ZeRO-3 each process holds only its shard of every parameter, so the model the main process would
write is not the trained model. accelerate's `get_state_dict` gathers the full state dict (FSDP2: the full tensors,
on the CPU, on the main process; ZeRO-3: the gathered 16-bit weights; otherwise the model's own tensors). Every
process must call it (it is a collective). `holding` then puts those tensors in place of the model's parameters while
the model is written, so that every module's own `save` (save_pretrained, safetensors) writes whole weights, and
puts the parameters back.
"""

import contextlib
from collections.abc import Iterator

from accelerate import Accelerator
from accelerate.utils import DistributedType
from torch import Tensor, nn


def shards_parameters(accelerator: Accelerator) -> bool:
    """Whether each process holds only a shard of the parameters (FSDP, DeepSpeed ZeRO-3): then every process must run
    the same forward calls, since each call of a sharded module gathers its parameters from all processes."""
    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


@contextlib.contextmanager
def holding(model: nn.Module, state_dict: dict[str, Tensor], prefix: str) -> Iterator[None]:
    """`model` with each parameter replaced by `state_dict[prefix + its name]` (tied parameters by one tensor, so they
    stay tied), for writing it; its own parameters back afterwards."""
    replacements: dict[int, nn.Parameter] = {}
    replaced: list[tuple[nn.Module, str, nn.Parameter]] = []
    try:
        for module_name, submodule in model.named_modules(remove_duplicate=False):
            for name, parameter in list(submodule._parameters.items()):
                if parameter is None:
                    continue
                if id(parameter) not in replacements:
                    key = prefix + (f"{module_name}.{name}" if module_name else name)
                    replacements[id(parameter)] = nn.Parameter(state_dict[key], requires_grad=False)
                replaced.append((submodule, name, parameter))
                submodule._parameters[name] = replacements[id(parameter)]
        yield
    finally:
        for submodule, name, parameter in replaced:
            submodule._parameters[name] = parameter
