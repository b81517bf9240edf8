"""`python fsdp_on_cpu.py ARGS` = `embedtrain ARGS` with accelerate's FSDP2 on CPU processes, for tests on a machine
without a GPU. Run it under `accelerate launch --config_file CONFIG` with an FSDP config whose `use_cpu` is true and
ACCELERATE_USE_CPU=true.

accelerate 1.15 enters FSDP only for accelerator processes (AcceleratorState: its FSDP branch is reached from
MULTI_GPU-like types; CPU processes are MULTI_CPU and train as DDP), while torch's FSDP2 itself shards over gloo on the
CPU. This puts the processes' shared accelerate state in FSDP mode with the plugin accelerate built from the launch
config, so that `accelerator.prepare`, `get_state_dict`, `save_state` and `load_state` take their FSDP2 paths, the
ones a GPU run takes, with CPU tensors. Test code only: embedtrain's own launch check refuses FSDP with use_cpu.
"""

import sys

import accelerate.state
from accelerate.utils import DistributedType

_initialise = accelerate.state.AcceleratorState.__init__


def _initialise_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs) -> None:
    _initialise(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.fsdp_plugin = fsdp_plugin
        # AcceleratorState copies PartialState's fields each time it is built: both say FSDP.
        self.distributed_type = DistributedType.FSDP
        accelerate.state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP


accelerate.state.AcceleratorState.__init__ = _initialise_with_fsdp_on_cpu

if __name__ == "__main__":
    import faulthandler
    import os

    from embedtrain.cli import main

    # A process that aborts prints every thread's Python stack (the test shows the output's tail).
    faulthandler.enable()
    sys.argv = ["embedtrain", *sys.argv[1:]]
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
    # Once embedtrain has returned (its files written, its process group destroyed), leave without the
    # interpreter's finalisation: there, rarely (one CI run in dozens), a gloo process of FSDP2 on the CPU aborted
    # ("terminate called without an active exception") after a run that had written everything. FSDP on CPU
    # processes is this test helper's configuration only; multi-process CPU runs (DDP) exit normally.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
