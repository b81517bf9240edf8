"""Exact top-k search: the (-score, corpus row) order of a full sort, whatever the chunk size; BEIR folder reading."""

import pytest
import torch

from embedtrain.errors import DataError
from embedtrain.evaluation.beir import beir_folders, load_beir_folder
from embedtrain.evaluation.retrieval import top_k_search
from embedtrain.similarity import MATRIX


def brute_force(queries: torch.Tensor, corpus: torch.Tensor, k: int) -> list[list[int]]:
    scores = MATRIX["dot"](queries, corpus).tolist()
    return [sorted(range(len(corpus)), key=lambda row: (-row_scores[row], row))[:k] for row_scores in scores]


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 100])
@pytest.mark.parametrize("k", [1, 4, 30])
def test_top_k_matches_a_full_sort_with_ties(chunk_size: int, k: int) -> None:
    generator = torch.Generator().manual_seed(chunk_size * 100 + k)
    # Integer vectors: dot products tie often, and exactly.
    queries = torch.randint(-2, 3, (6, 4), generator=generator).float()
    corpus = torch.randint(-2, 3, (25, 4), generator=generator).float()
    scores, rows = top_k_search(queries, corpus, MATRIX["dot"], k, chunk_size)
    assert rows.tolist() == brute_force(queries, corpus, k)
    assert scores.shape == (6, min(k, 25))


def test_beir_folder_reading(beir_folder) -> None:
    data = load_beir_folder(beir_folder, "test", "evaluators[0]")
    assert data.corpus["doc90"] == "a title the weather is lovely today"
    assert data.relevant["q0"] == {"doc00", "doc04"}
    assert "doc05" not in data.relevant["q1"]
    assert beir_folders(beir_folder.parent, "x") == [beir_folder]
    with pytest.raises(DataError, match=r"qrels.*dev.tsv.*set `split:` to one of \['test'\]"):
        load_beir_folder(beir_folder, "dev", "evaluators[0]")
