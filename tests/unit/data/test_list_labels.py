"""List-valued labels (teacher scores, teacher embeddings): checked before training, collated to float32 (batch, k)."""

import pytest
import torch
from datasets import Dataset

from embedtrain.data.checks import DatasetReport, LoadedData, inspect_rows, raise_on_errors
from embedtrain.data.contract import ColumnContract, resolve_columns
from embedtrain.data.training_data import Collator
from embedtrain.errors import DataError
from embedtrain.losses import LOSSES

SCORES_CONTRACT = LOSSES["MarginMSELoss"].contract
EMBEDDING_CONTRACT = LOSSES["EmbedDistillLoss"].contract


def check(rows: dict, contract: ColumnContract) -> None:
    dataset = Dataset.from_dict(rows)
    mapping = resolve_columns(dataset.column_names, contract, None, [], "datasets.train.x")
    report = DatasetReport("datasets.train.x", "test", contract, row_count=len(dataset), mapping=mapping)
    inspect_rows(report, LoadedData(dataset, mapping), tokenization=None)
    raise_on_errors([report])


def test_teacher_scores_and_embeddings_are_accepted() -> None:
    check({"query": ["q1", "q2"], "positive": ["p1", "p2"], "negative": ["n1", "n2"], "label": [[3.0, 1.0], [2.0, 2.5]]},
          SCORES_CONTRACT)
    check({"query": ["q1", "q2"], "positive": ["p1", "p2"], "negative": ["n1", "n2"], "label": [2.0, -0.5]}, SCORES_CONTRACT)
    check({"sentence": ["a", "b"], "label": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]}, EMBEDDING_CONTRACT)
    check({"sentence": ["a", "b"], "other": ["c", "d"], "label": [[[0.1, 0.2]] * 2, [[0.3, 0.4]] * 2]}, EMBEDDING_CONTRACT)


@pytest.mark.parametrize(("rows", "contract", "message"), [
    ({"query": ["q"] * 2, "positive": ["p"] * 2, "negative": ["n"] * 2, "label": [[1.0, 2.0], [1.0]]},
     SCORES_CONTRACT, "lists of numbers of one length"),
    ({"query": ["q"] * 2, "positive": ["p"] * 2, "negative": ["n"] * 2, "label": [[1.0, float("nan")], [1.0, 2.0]]},
     SCORES_CONTRACT, "1 rows do not, at row 0"),
    ({"query": ["q"] * 2, "positive": ["p"] * 2, "negative": ["n"] * 2, "label": [[1.0, 2.0], None]},
     SCORES_CONTRACT, "1 missing values, at row 1"),
    ({"sentence": ["a", "b"], "label": [0.5, 0.7]}, EMBEDDING_CONTRACT, "a list of numbers per row"),
])
def test_bad_list_labels_are_data_errors(rows: dict, contract: ColumnContract, message: str) -> None:
    with pytest.raises(DataError) as error:
        check(rows, contract)
    assert message in str(error.value) and "'label'" in str(error.value)


def test_collator_makes_a_float32_matrix_of_list_labels() -> None:
    collate = Collator(lambda texts, prompt, route: {"input_ids": torch.zeros(len(texts), 1)})
    batch = collate({"dataset": "x", "texts": [["a", "b"]], "prompts": [None], "routes": [None],
                     "labels": [[1, 2, 3], [4, 5, 6]],
                     "label_kind": "scores", "in_batch_negatives": False})
    assert batch["labels"].dtype == torch.float32 and batch["labels"].shape == (2, 3)
