"""Training observers for tests."""

from embedtrain.engine.observer import TrainingObserver


class StopAt(TrainingObserver):
    """Simulates a run killed right after optimizer step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, step: int) -> None:
        if step == self.step:
            raise KeyboardInterrupt
