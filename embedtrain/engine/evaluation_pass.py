"""One evaluation of the model being trained: its evaluators' metrics and the loss of each eval set, on every process."""

import torch
from accelerate import Accelerator
from accelerate.utils import send_to_device
from torch import nn

from embedtrain.data.training_data import Batch, Collator, PreparedDataset, TextCollator, eval_batches
from embedtrain.engine.training_module import Model, TrainingModule, batch_rows
from embedtrain.evaluation import Evaluator, embeddings_across_processes, same_on_every_process, shared_embeddings
from embedtrain.recipe.training import eval_loss_metric


class EvaluationPass:
    """The evaluators and the eval sets' losses (`eval_loss_metric(name)`), run by every process together: each embeds
    a share of the evaluators' texts and computes the loss of a share of the eval batches."""

    def __init__(self, accelerator: Accelerator, evaluators: list[Evaluator], eval_sets: dict[str, PreparedDataset],
                 batch_size: int, collator: Collator | TextCollator) -> None:
        self.accelerator = accelerator
        self.evaluators, self.eval_sets = evaluators, eval_sets
        self.batch_size, self.collator = batch_size, collator

    def has_work(self) -> bool:
        return bool(self.evaluators or self.eval_sets)

    def run(self, prepared: nn.Module) -> dict[str, float]:
        """The metrics, the main process's on every process (so that all agree on the best checkpoint). `prepared`:
        the TrainingModule as `accelerator.prepare` returned it; it is back in training mode afterwards."""
        module: TrainingModule = self.accelerator.unwrap_model(prepared)
        module.eval()
        try:
            if self.accelerator.is_fsdp2:
                with torch.no_grad():
                    metrics = prepared(evaluate=lambda model: self._run_evaluators_sharded(prepared, model))
            else:
                metrics = self._run_evaluators(module.model)
            with torch.no_grad():
                for name, dataset in self.eval_sets.items():
                    metrics[eval_loss_metric(name)] = self._eval_loss(module, dataset)
        finally:
            module.train()
        return metrics

    def _run_evaluators_sharded(self, prepared: nn.Module, model: Model) -> dict[str, float]:
        """`_run_evaluators` under FSDP2, called inside the root module's forward. Models embed under
        torch.inference_mode, and FSDP2 cannot later write into the buffers of a unit whose parameters were first
        gathered there ("inplace update to inference tensor"): every unit gathers them here first, outside it."""
        from torch.distributed.fsdp import FSDPModule

        for unit in prepared.modules():
            if isinstance(unit, FSDPModule):
                unit.unshard()
        return self._run_evaluators(model)

    def _run_evaluators(self, model: Model) -> dict[str, float]:
        metrics: dict[str, float] = {}
        # shared_embeddings: evaluators that share texts embed them once
        with shared_embeddings(), embeddings_across_processes():
            for evaluator in self.evaluators:
                metrics |= evaluator(model)
            return same_on_every_process(metrics)

    def _eval_loss(self, module: TrainingModule, dataset: PreparedDataset) -> float:
        """The mean loss per row over the eval set. With N processes, process r takes batches r, r + N, ... (the
        batches one process would make, so in-batch negatives are the same) and the sums are added up; each runs as
        many batches (one short of batches repeats the last, uncounted), as a sharded model (FSDP, ZeRO-3) needs."""
        accelerator = self.accelerator
        processes, rank = accelerator.num_processes, accelerator.process_index
        total, count, mine, batch = 0.0, 0, 0, None
        for index, batch in enumerate(eval_batches(dataset, self.batch_size, self.collator)):
            if index % processes == rank:
                size = batch_rows(batch)
                total += self._batch_loss(module, batch) * size
                count += size
                mine += 1
        if processes > 1:
            if batch is not None and mine < -(-(index + 1) // processes):
                self._batch_loss(module, batch)
            sums = accelerator.reduce(torch.tensor([total, count], dtype=torch.float64, device=accelerator.device), "sum")
            total, count = float(sums[0]), int(sums[1])
        return total / count

    def _batch_loss(self, module: TrainingModule, batch: Batch) -> float:
        # send_to_device leaves non-tensors (a router's `task`, a cross-encoder's texts and list labels) as they are.
        batch["features"] = send_to_device(batch["features"], self.accelerator.device)
        batch["labels"] = send_to_device(batch["labels"], self.accelerator.device)
        return float(module(batch))
