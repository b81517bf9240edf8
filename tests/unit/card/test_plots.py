"""The training plots: the loss of each training dataset (and of each eval dataset), the learning rate and each
evaluator's primary metric over the steps, as valid PNG files in every folder asked, embedded in the card by relative
links; without matplotlib, one warning and a card that says so instead of linking missing images."""

import logging
import sys

import pytest
from PIL import Image

from embedtrain.card.plots import plot_series, plots_section, write_plots

HISTORY = [
    {"step": 0, "nano_ndcg@10": 0.1, "eval_held_loss": 3.0},
    {"step": 1, "epoch": 0.5, "loss": 2.0, "learning_rate": 2e-5, "a_loss": 2.5, "b_loss": 1.5},
    {"step": 2, "epoch": 1.0, "loss": 1.0, "learning_rate": 1e-5, "a_loss": 1.2, "b_loss": 0.8},
    {"step": 2, "nano_ndcg@10": 0.3, "eval_held_loss": 2.0},
]
PRIMARY = ["nano_ndcg@10", "eval_held_loss"]


def test_the_loss_plot_has_each_training_dataset_and_each_eval_loss():
    series = plot_series(HISTORY, ["a", "b"], PRIMARY, ["eval_held_loss"])
    assert list(series) == ["loss", "learning_rate", "nano_ndcg_10"]
    _, _, losses = series["loss"]
    assert {line.label: (line.steps, line.values) for line in losses} == {
        "training loss (all datasets)": ([1, 2], [2.0, 1.0]), "a (training)": ([1, 2], [2.5, 1.2]),
        "b (training)": ([1, 2], [1.5, 0.8]), "eval_held_loss": ([0, 2], [3.0, 2.0])}
    assert series["nano_ndcg_10"][2][0].values == [0.1, 0.3]


def test_a_metric_the_history_does_not_hold_gets_no_plot():
    training_only = [record for record in HISTORY if "learning_rate" in record]
    assert list(plot_series(training_only, ["a"], PRIMARY, ["eval_held_loss"])) == ["loss", "learning_rate"]


def test_plots_are_valid_pngs_in_every_folder_and_the_card_links_them(tmp_path):
    model, run = tmp_path / "model", tmp_path / "run"
    model.mkdir()
    plots = write_plots(HISTORY, ["a", "b"], PRIMARY, ["eval_held_loss"], [model, run])
    assert [plot.file for plot in plots] == ["plots/loss.png", "plots/learning_rate.png", "plots/nano_ndcg_10.png"]
    for plot in plots:
        with Image.open(model / plot.file) as image:
            assert image.format == "PNG" and image.size[0] > 100
            image.verify()
        assert (run / plot.file).read_bytes() == (model / plot.file).read_bytes()
    section = plots_section(plots)
    assert all(f"]({plot.file})" in section for plot in plots)


@pytest.fixture
def without_matplotlib(monkeypatch):
    """matplotlib's modules as missing: importing any of them raises ImportError."""
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_without_matplotlib_one_warning_and_no_image_links(tmp_path, caplog, without_matplotlib):
    with caplog.at_level(logging.WARNING):
        plots = write_plots(HISTORY, ["a", "b"], PRIMARY, ["eval_held_loss"], [tmp_path / "model", tmp_path / "run"])
    assert plots is None and not (tmp_path / "model" / "plots").exists()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "pip install 'embedtrain[plots]'" in warnings[0]
    section = plots_section(plots)
    assert "![" not in section and "matplotlib was not installed" in section
