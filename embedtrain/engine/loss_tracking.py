"""What the loop keeps on the device between host syncs: loss sums per dataset, and the first non-finite loss."""

import time

import torch
from accelerate import Accelerator
from torch import Tensor


class FirstNonFinite:
    """The first step whose training loss was not finite, and its dataset, tracked on the device.

    Checking each loss on the host would synchronise the device at every step; this adds two tiny device
    operations per batch, and the host reads the result only where it syncs anyway (logging steps) or must know
    (before publishing a checkpoint).
    """

    def __init__(self, datasets: list[str], device: torch.device) -> None:
        self.datasets = datasets
        self.step = torch.full((), -1, dtype=torch.long, device=device)  # -1: none yet
        self.dataset = torch.full((), -1, dtype=torch.long, device=device)

    def add(self, loss: Tensor, step: int, dataset: str) -> None:
        # Python numbers enter the device ops as kernel arguments: a tensor built from them on the host would be
        # copied to the device, and a copy from pageable memory synchronises the stream every step.
        first_bad = (~torch.isfinite(loss)) & (self.step < 0)
        self.step = torch.where(first_bad, step, self.step)
        self.dataset = torch.where(first_bad, self.datasets.index(dataset), self.dataset)

    def first(self, accelerator: Accelerator) -> tuple[int, str] | None:
        """(step, dataset) of the earliest non-finite loss on any process, or None."""
        pair = torch.stack([self.step, self.dataset]).unsqueeze(0)
        found = (accelerator.gather(pair) if accelerator.num_processes > 1 else pair).tolist()
        bad = sorted((step, index) for step, index in found if step >= 0)
        return (bad[0][0], self.datasets[bad[0][1]]) if bad else None


class LossWindow:
    """Loss sums per dataset since the last log, kept on the device (no host sync per step), and the rows and wall
    time of the window, for the throughput.

    Every process holds the same dataset order, so the sums can be reduced across processes even
    when a process saw no batch of some dataset.
    """

    def __init__(self, datasets: list[str], device: torch.device) -> None:
        self.datasets = datasets
        self.sums = torch.zeros(len(datasets), device=device)
        self.counts = torch.zeros(len(datasets), device=device)
        self.diagnostics: dict[str, list[float]] = {}  # host-side numbers from the collator, this process only
        self.rows = 0  # training rows this process saw (host-side: batch shapes are known without a device sync)
        self.started = time.perf_counter()

    def add(self, dataset: str, loss: Tensor, diagnostics: dict[str, float], rows: int) -> None:
        index = self.datasets.index(dataset)
        self.rows += rows
        self.sums[index] += loss.float()
        self.counts[index] += 1
        for name, value in diagnostics.items():
            self.diagnostics.setdefault(name, []).append(value)

    def diagnostic_means(self) -> dict[str, float]:
        return {name: sum(values) / len(values) for name, values in self.diagnostics.items()}

    def samples_per_second(self, accelerator: Accelerator) -> float:
        """Training rows of every process per second of wall time since the window opened (evaluations and
        checkpoints in it included)."""
        rows = self.rows
        if accelerator.num_processes > 1:
            rows = int(accelerator.reduce(torch.tensor(float(rows), device=accelerator.device), "sum").item())
        return rows / max(time.perf_counter() - self.started, 1e-9)

    def means(self, accelerator: Accelerator) -> dict[str, float]:
        """Mean loss per dataset that had batches, and over all batches ('all'), across processes."""
        sums, counts = accelerator.reduce(self.sums, "sum").tolist(), accelerator.reduce(self.counts, "sum").tolist()
        means = {name: total / count for name, total, count in zip(self.datasets, sums, counts) if count}
        means["all"] = sum(sums) / max(sum(counts), 1)
        return means
