"""SIGTERM and SIGINT during training: finish the current optimizer step, checkpoint, then stop.

A scheduler preempting a job sends SIGTERM and waits a grace period before SIGKILL; Ctrl-C sends
SIGINT. Both only set a flag here: the loop reads it after each optimizer step, when the model,
optimizer and data position form a consistent state to save. A second signal stops at once
(KeyboardInterrupt), for a user who does not want to wait for the checkpoint.
"""

import logging
import signal
import threading

from embedtrain.errors import TrainingError

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(TrainingError):
    """The run stopped at a stop signal, after checkpointing its last step: it can be resumed (exit code 4, as any
    runtime failure; run.json says `interrupted`)."""


class PreemptionSignals:
    """Installed for the duration of the training loop; the previous handlers are restored on exit."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "PreemptionSignals":
        # Python only lets the main thread install handlers (a run started from another thread keeps the defaults).
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum)
        logger.warning("%s received: stopping after the current step with a checkpoint (send it again to stop now)",
                       self.received.name)
