"""The `training:` section of a recipe: what the engine consumes (loop, optimizer, schedule, checkpoints)."""

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from embedtrain.config import StrictModel
from embedtrain.data.samplers import BatchSamplerName, MultiDatasetSamplerName
from embedtrain.models.publish import repo_id_problem

TrackerName = Literal["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab", "trackio"]
"""The experiment trackers accelerate's tracker API knows by name (`Accelerator(log_with=...)`)."""


def eval_loss_metric(dataset_name: str) -> str:
    """The metric of an eval dataset's loss: the one spelling of the recipe's check, the trainer, the card and the
    README. The `eval_` prefix is the reference trainer's, and it keeps the name apart from the training log's
    `<name>_loss` of a training dataset that has the same name."""
    return f"eval_{dataset_name}_loss"


class PushToHubConfig(StrictModel):
    """`training.push_to_hub`: publish the run to a Hugging Face Hub repo (as `embedtrain push`)."""

    repo_id: str = Field(description="NAME or NAMESPACE/NAME; the repo is created if missing")
    private: bool = Field(False, description="create the repo private (an existing repo keeps its visibility)")
    revision: str | None = Field(None, description="the branch to push to, created if missing (default: main)")
    every_save: bool = Field(False, description="also push each checkpoint (model, optimizer and trainer state) "
                             "to checkpoints/<name>/ when it is saved; needs save_steps")

    @model_validator(mode="after")
    def _valid_repo_id(self) -> "PushToHubConfig":
        problem = repo_id_problem(self.repo_id)
        if problem is not None:
            raise ValueError(problem)
        return self


class TrainingConfig(StrictModel):
    output_dir: str = Field(description="checkpoints, metrics.jsonl, the resolved recipe and final/ go here")
    epochs: int = Field(1, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimizer steps (overrides epochs)")
    batch_size: int = Field(16, gt=0, description="rows per batch on each process")
    gradient_accumulation_steps: int = Field(1, gt=0)
    learning_rate: float = Field(2e-5, gt=0)
    learning_rate_mapping: dict[str, float] = Field(
        default_factory=dict, description="regex -> learning rate for the model parameters whose name it matches "
        "(re.search; first matching pattern wins), e.g. {'SparseStaticEmbedding\\.weight': 1e-3}; "
        "`embedtrain list modules RECIPE` lists the names")
    weight_decay: float = Field(0.0, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = Field(1e-8, gt=0)
    scheduler: Literal["linear", "cosine", "constant"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="share of the optimizer steps spent warming up")
    warmup_steps: int | None = Field(None, ge=0, description="warm-up in optimizer steps (instead of warmup_ratio)")
    max_grad_norm: float | None = Field(1.0, gt=0, description="clip gradients to this norm; null disables clipping")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = Field(
        "auto", description="auto: bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU")
    seed: int = 42
    logging_steps: int = Field(10, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="evaluate every N steps (always before and after training)")
    eval_before_training: bool = True
    save_steps: int | None = Field(None, gt=0, description="write a checkpoint every N steps (and at the end)")
    save_total_limit: int | None = Field(None, gt=0, description="keep only the newest N checkpoints (and the best)")
    metric_for_best_model: str | None = Field(None, description="metric that picks the best checkpoint, e.g. sts-dev_spearman_cosine")
    load_best_model_at_end: bool = Field(False, description="save the best checkpoint's model as final/")
    batch_sampler: BatchSamplerName = Field(
        "random", description="random; no_duplicates (no text twice in a batch: no false in-batch negatives); "
        "group_by_label (pairs of rows with the same label, for batch-triplet losses)")
    multi_dataset_sampler: MultiDatasetSamplerName = Field(
        "proportional", description="how batches of several datasets interleave: proportional (every batch once), "
        "round_robin (one of each in turn), weighted (by each dataset's weight)")
    dataloader_drop_last: bool = False
    dataloader_num_workers: int = Field(0, ge=0)
    length_chunking: bool | Literal["auto"] = Field(
        "auto", description="run each batch through the encoder in length-homogeneous chunks (packed, for BERT-style "
        "encoders): the same loss and gradients with far less padding (the batches themselves are unchanged). auto: "
        "on CPU only, where it is 2-3x faster; a GPU computes the padded batch faster (one large call instead of "
        "several small ones); true: on GPUs too")
    push_to_hub: PushToHubConfig | None = Field(
        None, description="push final/ (with its card) to this Hub repo at the end of training, and with every_save "
        "each checkpoint; a token from HF_TOKEN or `hf auth login`")
    report_to: list[TrackerName] = Field(
        default_factory=list, description="experiment trackers that receive the scalars of metrics.jsonl and the "
        "resolved recipe as config, e.g. [tensorboard, wandb, mlflow] (pip install 'embedtrain[trackers]'); their "
        "files go to output_dir/logs/<tracker>; W&B logs offline unless WANDB_MODE says otherwise, MLflow to a file "
        "store there unless MLFLOW_TRACKING_URI names another; none by default")
    project_name: str = Field("embedtrain", min_length=1, description="the project the trackers file the run under "
                              "(W&B project, MLflow experiment)")
    run_name: str | None = Field(None, min_length=1, description="the run's name in the trackers (default: the output "
                                 "directory's name)")
    track_emissions: bool = Field(
        False, description="measure the energy used and its CO2-equivalent with codecarbon, offline (its country "
        "from CODECARBON_COUNTRY_ISO_CODE, else the world average), for run.json and the model card; its log goes "
        "to output_dir/logs/codecarbon (pip install 'embedtrain[trackers]')")

    @field_validator("report_to")
    @classmethod
    def _each_tracker_once(cls, trackers: list[str]) -> list[str]:
        if len(set(trackers)) < len(trackers):
            raise ValueError(f"names a tracker twice: {trackers}")
        return trackers
    gradient_checkpointing: bool = Field(
        False, description="keep no activations inside the encoder's layers but recompute them in the backward pass: "
        "far less memory for long texts and large batches (with GradCache too), about a third more compute; the "
        "same loss and gradients")

    @model_validator(mode="after")
    def _patterns_compile(self) -> "TrainingConfig":
        for pattern, rate in self.learning_rate_mapping.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"learning_rate_mapping: {pattern!r} is not a regular expression ({error})") from None
            if rate <= 0:
                raise ValueError(f"learning_rate_mapping: {pattern!r} -> {rate}: a learning rate must be > 0")
        return self

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingConfig":
        if self.warmup_steps is not None and self.warmup_ratio:
            raise ValueError("set warmup_ratio or warmup_steps, not both")
        if self.batch_sampler == "group_by_label" and self.batch_size % 2:
            raise ValueError(f"batch_sampler group_by_label puts rows in pairs: batch_size must be even, not {self.batch_size}")
        if self.push_to_hub and self.push_to_hub.every_save and not self.save_steps:
            raise ValueError("push_to_hub.every_save pushes each checkpoint: set save_steps")
        if self.load_best_model_at_end and not self.metric_for_best_model:
            raise ValueError("load_best_model_at_end needs metric_for_best_model")
        if self.load_best_model_at_end and self.save_steps and (not self.eval_steps or self.save_steps % self.eval_steps):
            raise ValueError("load_best_model_at_end: save_steps must be a multiple of eval_steps, so that every "
                             "checkpoint has been evaluated")
        return self
