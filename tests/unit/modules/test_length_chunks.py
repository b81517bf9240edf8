"""Length-aware execution changes how a batch is executed, never what it computes.

Packed (unpadded), chunked and plain padded forward passes give the same loss and gradients (rel.
1e-5) for MNRL, CoSENT, CachedMNRL and AdaptiveLayerLoss (every layer's hidden states); the chunk planner
covers every row once, respects its cap and is optimal.
"""

import itertools
import random
from pathlib import Path

import pytest
import torch
from helpers.texts import ANCHORS, POSITIVES, QUADRUPLET

from embedtrain.losses import LOSSES, build_loss
from embedtrain.models.io import load_model
from embedtrain.modules.length_chunks import LengthChunking, plan_chunks

# Every row its own chunk unless lengths are equal: the most chunks the planner can make.
EAGER = LengthChunking(chunk_cost=0)


def cost(chunks: list[list[int]], lengths: list[int], chunk_cost: int) -> int:
    return sum(len(rows) * max(lengths[row] for row in rows) + chunk_cost for rows in chunks)


def brute_force_cost(lengths: list[int], chunk_cost: int, cap: int) -> int:
    """The cheapest split of the length-sorted rows into contiguous chunks, by trying every split."""
    ordered = sorted(lengths, reverse=True)
    best = None
    for cuts in itertools.product([False, True], repeat=len(ordered) - 1):
        chunks, current = [], [0]
        for row, cut in enumerate(cuts, start=1):
            if cut:
                chunks.append(current)
                current = []
            current.append(row)
        chunks.append(current)
        if any(len(rows) > 1 and len(rows) * ordered[rows[0]] > cap for rows in chunks):
            continue
        total = cost(chunks, ordered, chunk_cost)
        best = total if best is None else min(best, total)
    return best


@pytest.mark.parametrize("chunk_cost", [0, 8, 40, 1000])
def test_the_plan_is_the_cheapest_split(chunk_cost: int) -> None:
    generator = random.Random(chunk_cost)
    for _ in range(30):
        lengths = [generator.randint(1, 40) for _ in range(generator.randint(1, 9))]
        cap = generator.choice([40, 80, 10_000])
        chunks = plan_chunks(lengths, chunk_cost, cap)
        assert sorted(itertools.chain(*chunks)) == list(range(len(lengths)))
        assert all(len(rows) == 1 or len(rows) * max(lengths[row] for row in rows) <= cap for rows in chunks)
        assert cost(chunks, lengths, chunk_cost) == brute_force_cost(lengths, chunk_cost, cap)


def test_rows_of_equal_length_share_a_chunk_up_to_the_cap() -> None:
    assert plan_chunks([5, 5, 5, 5], chunk_cost=0, max_chunk_tokens=10) == [[0, 1], [2, 3]]
    assert plan_chunks([3, 9, 3], chunk_cost=0, max_chunk_tokens=100) == [[1], [0, 2]]
    assert plan_chunks([3, 9, 3], chunk_cost=100, max_chunk_tokens=100) == [[1, 0, 2]]


def loss_and_gradients(checkpoint: Path, params: dict, columns: list[list[str]], labels, chunking, packing=False):
    model = load_model(checkpoint).train()
    assert model.input_module.packing  # a BERT encoder qualifies
    model.input_module.length_chunking, model.input_module.packing = chunking, packing
    loss = build_loss(LOSSES[params["type"]].params_model(**params), model)
    value = loss(model, [model.tokenize(texts) for texts in columns], labels)
    value.backward()
    return value.item(), {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


CASES = {
    "MultipleNegativesRankingLoss": ({"type": "MultipleNegativesRankingLoss"}, QUADRUPLET, None),
    "CoSENTLoss": ({"type": "CoSENTLoss"}, [ANCHORS, POSITIVES], torch.linspace(0, 1, len(ANCHORS))),
    "CachedMultipleNegativesRankingLoss": (
        {"type": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 3}, QUADRUPLET, None),
    # Every layer (n_layers_per_step -1: no sampling), through Transformer.forward_all_layers.
    "AdaptiveLayerLoss": (
        {"type": "AdaptiveLayerLoss", "loss": {"type": "MultipleNegativesRankingLoss"}, "n_layers_per_step": -1},
        QUADRUPLET, None),
}


@pytest.mark.parametrize("packing", [False, True], ids=["chunked", "packed"])
@pytest.mark.parametrize("case", CASES)
def test_length_aware_execution_gives_the_padded_loss_and_gradients(case: str, packing: bool,
                                                                    tiny_checkpoint: Path) -> None:
    params, columns, labels = CASES[case]
    chunked = loss_and_gradients(tiny_checkpoint, params, columns, labels, EAGER, packing)
    padded = loss_and_gradients(tiny_checkpoint, params, columns, labels, None)
    assert chunked[0] == pytest.approx(padded[0], rel=1e-5)
    assert chunked[1].keys() == padded[1].keys()
    # Some gradients are zero in exact arithmetic (attention key biases: softmax ignores a shift), so the
    # absolute tolerance is relative to the largest gradient of the model rather than of each tensor.
    scale = max(grad.abs().max().item() for grad in padded[1].values())
    for name, grad in padded[1].items():
        torch.testing.assert_close(chunked[1][name], grad, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("packing", [False, True], ids=["chunked", "packed"])
def test_every_layer_runs_length_aware_and_gives_the_padded_hidden_states(packing: bool, tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    transformer = model.input_module
    features = model.tokenize(ANCHORS + POSITIVES)
    mask = features["attention_mask"].bool()
    assert not mask.all()  # the batch has padding to skip
    padded = transformer.forward_all_layers(dict(features))
    assert len(padded["all_layer_embeddings"]) == transformer.auto_model.config.num_hidden_layers + 1

    token_counts = []
    transformer.auto_model.embeddings.word_embeddings.register_forward_pre_hook(
        lambda module, args: token_counts.append(args[0].numel()))
    transformer.length_chunking, transformer.packing = EAGER, packing
    length_aware = transformer.forward_all_layers(dict(features))

    assert sum(token_counts) == mask.sum()  # the encoder computed the real tokens only
    assert len(token_counts) == (1 if packing else len(set(mask.sum(dim=1).tolist())))
    pairs = [*zip(length_aware["all_layer_embeddings"], padded["all_layer_embeddings"], strict=True),
             (length_aware["token_embeddings"], padded["token_embeddings"])]
    for ours, reference in pairs:
        assert ours.shape == reference.shape
        torch.testing.assert_close(ours[mask], reference[mask], rtol=1e-5, atol=1e-5)
        assert not ours[~mask].any()
    torch.testing.assert_close(length_aware["token_embeddings"], length_aware["all_layer_embeddings"][-1])


def test_chunking_really_splits_the_batch(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    widths = []
    model.input_module.auto_model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    features = model.tokenize(ANCHORS)
    model.input_module.length_chunking, model.input_module.packing = EAGER, False
    model(features)
    assert len(widths) > 1 and sum(rows for rows, _ in widths) == len(ANCHORS)
    assert sum(rows * width for rows, width in widths) == features["attention_mask"].sum()


def test_left_padded_tokenizers_run_unchunked(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    model.input_module.tokenizer.padding_side = "left"
    model.input_module.length_chunking = EAGER
    calls = []
    model.input_module.auto_model.register_forward_pre_hook(lambda module, args: calls.append(1))
    model(model.tokenize(ANCHORS))
    assert len(calls) == 1


def test_batches_on_a_gpu_run_padded_unless_the_setting_asks_for_chunks(tiny_checkpoint: Path, monkeypatch) -> None:
    """`training.length_chunking: auto` chunks on the CPU only (on a GPU the padded batch is faster); true chunks on
    GPUs too. A GPU is stood in for by the device check, which is all that differs."""
    from embedtrain.modules.length_chunks import length_chunking

    assert length_chunking(False) is None
    assert not length_chunking("auto").runs_on(torch.device("cuda"))
    assert length_chunking("auto").runs_on(torch.device("cpu"))
    assert length_chunking(True).runs_on(torch.device("cuda"))

    model = load_model(tiny_checkpoint)
    widths = []
    model.input_module.auto_model.register_forward_pre_hook(
        lambda module, args, kwargs: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    features = model.tokenize(ANCHORS)
    model.input_module.length_chunking, model.input_module.packing = LengthChunking(chunk_cost=0), False
    monkeypatch.setattr(LengthChunking, "runs_on", lambda self, device: self.on_accelerators)  # as on a GPU
    model(dict(features))
    assert widths == [tuple(features["input_ids"].shape)]  # one padded call
    widths.clear()
    model.input_module.length_chunking = LengthChunking(chunk_cost=0, on_accelerators=True)
    model(dict(features))
    assert len(widths) > 1


@pytest.mark.usefixtures("fresh_accelerate_state")
@pytest.mark.parametrize("setting, expected", [("auto", False), (True, True), (False, None)])
def test_the_recipe_setting_reaches_the_encoder(tmp_path, tiny_checkpoint, sts_csv, setting, expected) -> None:
    import yaml

    from embedtrain.engine.run import checked_data
    from embedtrain.recipe.build import build_training_model
    from embedtrain.recipe.loading import load_recipe

    recipe = {"model": {"base": str(tiny_checkpoint)}, "losses": {"main": {"type": "CoSENTLoss"}},
              "datasets": {"train": {"sts": {"source": str(sts_csv)}}},
              "training": {"output_dir": str(tmp_path / "run"), "max_steps": 1, "length_chunking": setting}}
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    recipe = load_recipe(tmp_path / "recipe.yaml")

    chunking = build_training_model(recipe, checked_data(recipe)[0]).input_module.length_chunking

    assert (chunking if chunking is None else chunking.on_accelerators) == expected
