"""The card's evaluation and training parts, from a run given directly: the model-index and the evaluator's table,
the non-default hyperparameters, the training log with the best checkpoint's row bold, and the run's time, hardware
and emissions (front matter and body)."""

import pytest
from huggingface_hub import ModelCard

from embedtrain.card.environment import TrainingRun
from embedtrain.card.model_card import render_model_card
from embedtrain.card.training_card import format_duration
from embedtrain.models.build import build_model
from embedtrain.models.config import ModelConfig

from .subjects import recipe_for, subject_for

HISTORY = [
    {"step": 0, "dev_pearson_cosine": 0.2, "dev_spearman_cosine": 0.1},
    {"step": 2, "epoch": 0.5, "loss": 2.0, "learning_rate": 1e-5, "grad_norm": 3.0},
    {"step": 2, "dev_pearson_cosine": 0.5, "dev_spearman_cosine": 0.4},
    {"step": 4, "epoch": 1.0, "loss": 1.5, "learning_rate": 0.0, "grad_norm": 2.0},
    {"step": 4, "dev_pearson_cosine": 0.45, "dev_spearman_cosine": 0.3},
]
METRICS = {"dev_pearson_cosine": 0.5, "dev_spearman_cosine": 0.4}  # the best checkpoint's (step 2)


@pytest.fixture
def card(tmp_path, tiny_checkpoint):
    def render(run: TrainingRun | None) -> str:
        recipe = recipe_for("dense", tmp_path)
        return render_model_card(subject_for(build_model(ModelConfig(base=str(tiny_checkpoint))), recipe), METRICS,
                                 HISTORY, run)
    return render


def test_the_model_index_holds_each_metric_of_the_evaluator(card):
    data = ModelCard(card(None)).data
    results = {(result.dataset_name, result.metric_type): result for result in data.eval_results}
    assert {key: result.metric_value for key, result in results.items()} == {
        ("dev", "pearson_cosine"): 0.5, ("dev", "spearman_cosine"): 0.4}
    result = results["dev", "spearman_cosine"]
    assert (result.task_type, result.dataset_type, result.dataset_split) == ("semantic-similarity", "data/dev.csv",
                                                                              "train")
    assert data.metrics == ["pearson_cosine", "spearman_cosine"]


def test_the_evaluators_table_shows_the_primary_metric_bold(card):
    section = card(None).split("#### Semantic Similarity: dev")[1].split("##")[0]
    assert "| **spearman_cosine** | **0.4000** |" in section and "| pearson_cosine | 0.5000 |" in section


def test_the_hyperparameters_the_recipe_changed_come_first_and_all_are_folded(card):
    text = card(None).split("### Training Hyperparameters")[1].split("### Training Logs")[0]
    changed, folded = text.split("<details>")
    assert "- `max_steps`: 4" in changed and "learning_rate" not in changed and "output_dir" not in text
    assert "- `learning_rate`: 2e-05" in folded and "- `max_steps`: 4" in folded


def test_a_run_marks_the_best_row_and_states_time_hardware_and_emissions(card):
    text = card(TrainingRun(seconds=3665.2, hardware="2 x NVIDIA H100", best_step=2, emissions_kg=0.0125))
    logs = text.split("### Training Logs")[1].split("###")[0]
    assert "| **0.5** | **2** | **2.0000** | **0.4000** |" in logs and "| 1.0 | 4 | 1.5000 | 0.3000 |" in logs
    assert "The bold row denotes the best checkpoint (step 2)" in logs
    assert "- Training time: 1 h 01 min 05 s" in text and "- Hardware: 2 x NVIDIA H100" in text
    assert "- Carbon emissions: 0.012500 kg CO2-equivalent" in text
    emissions = ModelCard(text).data.co2_eq_emissions
    assert emissions == {"emissions": 12.5, "source": "codecarbon", "training_type": "fine-tuning",
                         "hardware_used": "2 x NVIDIA H100"}


def test_without_a_run_no_row_is_bold_and_no_time_is_claimed(card):
    text = card(None)
    assert "**" not in text.split("### Training Logs")[1].split("###")[0]
    assert "Training time" not in text and "co2_eq_emissions" not in text
    assert "Training Plots" not in text  # none written, and none claimed missing


def test_durations_read_as_hours_minutes_seconds():
    assert [format_duration(seconds) for seconds in (12.34, 125, 3665.2)] == ["12.3 s", "2 min 05 s",
                                                                              "1 h 01 min 05 s"]
