"""`where:` keeps the rows of a dataset whose columns hold given values (e.g. the positive pairs of a labelled set)."""

import pytest

from embedtrain.data.checks import inspect_source
from embedtrain.data.source import DataSource, load_source, load_stream
from embedtrain.errors import DataError
from embedtrain.losses import LOSSES

ROWS = "question,answer,label\nwho,a man,1\nwhat,a dog,0\nwhere,a park,1\nwhen,today,2\n"


@pytest.fixture
def labelled_csv(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(ROWS, encoding="utf-8")
    return path


def test_where_keeps_the_matching_rows_in_order(labelled_csv):
    rows = load_source(DataSource(source=str(labelled_csv), where={"label": 1}), "datasets.train.qa")
    assert rows["question"] == ["who", "where"]
    either = load_source(DataSource(source=str(labelled_csv), where={"label": [0, 2]}), "datasets.train.qa")
    assert either["question"] == ["what", "when"]
    streamed = load_stream(DataSource(source=str(labelled_csv), where={"label": 1}), "datasets.train.qa")
    assert [row["question"] for row in streamed] == ["who", "where"]


def test_a_column_used_only_by_where_is_not_an_input(labelled_csv):
    contract = LOSSES["MultipleNegativesRankingLoss"].contract
    config = DataSource(source=str(labelled_csv), columns={"anchor": "question", "positive": "answer"},
                        where={"label": 1})
    report, data = inspect_source(config, contract, "datasets.train.qa")
    assert not report.errors, report.errors
    assert list(data.mapping.inputs) == [("anchor", "question"), ("positive", "answer")] and len(data.rows) == 2
    # Without `where`, the same mapping leaves `label` as an undeclared column: an error.
    unfiltered = DataSource(source=str(labelled_csv), columns={"anchor": "question", "positive": "answer"})
    report, data = inspect_source(unfiltered, contract, "datasets.train.qa")
    assert report.errors and data is None


def test_where_errors_name_the_key_and_the_fix(labelled_csv):
    with pytest.raises(DataError, match=r"datasets.train.qa.where: 'lable' is not a column .*did you mean 'label'"):
        load_source(DataSource(source=str(labelled_csv), where={"lable": 1}), "datasets.train.qa")
    with pytest.raises(DataError, match=r"datasets.train.qa.where: no row of .* matches \{'label': 5\}"):
        load_source(DataSource(source=str(labelled_csv), where={"label": 5}), "datasets.train.qa")
