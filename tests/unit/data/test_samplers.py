"""Batch samplers: no text twice in a no_duplicates batch, label pairs for group_by_label, the multi-dataset
interleavings, determinism per (seed, epoch), and every row used once per epoch."""

import random
from collections import Counter

import pyarrow as pa
import pytest
import torch

from embedtrain.data.samplers import DatasetBatching, MultiDatasetBatchSampler, text_keys


def duplicated_texts(rows: int, vocabulary: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    return ([f"a{rng.randrange(vocabulary)}" for _ in range(rows)], [f"p{rng.randrange(vocabulary)}" for _ in range(rows)])


@pytest.mark.parametrize("seed", range(5))
def test_no_duplicates_never_repeats_a_text_in_a_batch_and_uses_every_row_once(seed):
    anchors, positives = duplicated_texts(rows=500, vocabulary=60, seed=seed)
    positives[:20] = anchors[:20]  # a row whose anchor equals its positive still fits in an empty batch
    keys = text_keys([pa.chunked_array([anchors]), pa.chunked_array([positives])])
    sampler = MultiDatasetBatchSampler([DatasetBatching(500, "no_duplicates", keys=keys)], 16, False, seed)
    batches = list(sampler)
    assert sorted(row for batch in batches for row in batch) == list(range(500))
    for batch in batches:
        texts = [anchors[row] for row in batch] + [positives[row] for row in batch if positives[row] != anchors[row]]
        assert len(texts) == len(set(texts)), batch
    assert max(len(batch) for batch in batches) == 16


def test_text_keys_match_equal_texts_across_columns():
    keys = text_keys([pa.chunked_array([["x", "y"], ["z"]]), pa.chunked_array([["y", "w", "x"]])])
    assert keys.shape == (3, 2)
    assert keys[0, 0] == keys[2, 1] and keys[0, 1] == keys[1, 0] and len(set(keys[1].tolist())) == 2


def test_plan_depends_only_on_seed_and_epoch():
    def plan(seed, epoch):
        sampler = MultiDatasetBatchSampler([DatasetBatching(50), DatasetBatching(30)], 8, False, seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert plan(1, 0) == plan(1, 0)
    assert plan(1, 0) != plan(1, 1) and plan(1, 0) != plan(2, 0)


def test_proportional_uses_every_batch_of_every_dataset_once():
    sampler = MultiDatasetBatchSampler([DatasetBatching(50), DatasetBatching(30)], 8, False, 0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7 + 4
    for batch in batches:
        assert all(row < 50 for row in batch) or all(row >= 50 for row in batch)  # one dataset per batch
    assert sorted(row for batch in batches for row in batch) == list(range(80))


def test_round_robin_alternates_until_the_smallest_runs_out():
    batches = list(MultiDatasetBatchSampler([DatasetBatching(50), DatasetBatching(30)], 10, False, 0, "round_robin"))
    sources = [0 if batch[0] < 50 else 1 for batch in batches]
    assert sources == [0, 1, 0, 1, 0, 1]


def test_weighted_follows_the_weights():
    sampler = MultiDatasetBatchSampler([DatasetBatching(400), DatasetBatching(400)], 4, False, 0, "weighted",
                                       weights=[3.0, 1.0])
    counts = Counter(0 if batch[0] < 400 else 1 for batch in sampler)
    assert sum(counts.values()) == 200
    assert 0.68 < counts[0] / 200 < 0.82  # expected 0.75


def test_group_by_label_pairs_rows_of_the_same_label():
    labels = [row % 7 for row in range(200)]
    sampler = MultiDatasetBatchSampler([DatasetBatching(200, "group_by_label", labels=labels)], 8, False, 3)
    for batch in sampler:
        assert len(batch) % 2 == 0
        counts = Counter(labels[row] for row in batch)
        assert all(count >= 2 for count in counts.values()), batch


def test_drop_last_keeps_only_full_batches():
    batches = list(MultiDatasetBatchSampler([DatasetBatching(50)], 8, True, 0))
    assert [len(batch) for batch in batches] == [8] * 6


def test_the_random_sampler_is_a_seeded_permutation():
    batches = list(MultiDatasetBatchSampler([DatasetBatching(20)], 20, False, 5))
    assert batches == [torch.randperm(20, generator=torch.Generator().manual_seed(5)).tolist()]


def test_batch_diagnostics_count_repeats_and_true_negatives():
    from embedtrain.data.training_data import batch_diagnostics

    anchors, positives, negatives = ["a", "b", "c"], ["p", "p", "q"], ["n", "m", "p"]
    diagnostics = batch_diagnostics([anchors, positives, negatives], in_batch_negatives=True)
    assert diagnostics["duplicate_rate"] == pytest.approx(1 - 7 / 9)  # p appears three times
    # 6 candidates; "p" (the positive of the first two anchors) appears 3 times, "q" once.
    assert diagnostics["negatives_per_anchor"] == pytest.approx((3 + 3 + 5) / 3)
    assert "negatives_per_anchor" not in batch_diagnostics([anchors, positives], in_batch_negatives=False)
