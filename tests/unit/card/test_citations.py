"""Every registered loss has a decided entry in the citation table (a paper, or none of its own), every paper it
names is there as a BibTeX entry under its key, and a card cites Sentence-BERT first and each paper once."""

import re

import embedtrain.losses  # noqa: F401 - registers every loss
from embedtrain.card.citations import LOSS_PAPERS, PAPERS, SENTENCE_BERT, citations_for
from embedtrain.losses.registry import LOSSES


def test_every_registered_loss_is_in_the_table():
    assert set(LOSS_PAPERS) == set(LOSSES)


def test_every_paper_named_is_a_bibtex_entry_under_its_key():
    for key in {SENTENCE_BERT, *(key for keys in LOSS_PAPERS.values() for key in keys)}:
        entry = PAPERS[key]
        assert re.match(rf"^@\w+\{{{re.escape(key)},\n", entry), key
        assert entry.count("{") == entry.count("}") and "title" in entry and "year" in entry, key


def test_a_card_cites_sentence_bert_first_and_each_paper_once():
    cited = citations_for(["SpladeLoss", "SparseMultipleNegativesRankingLoss", "MultipleNegativesRankingLoss"])
    keys = [re.match(r"@\w+\{([^,]+),", entry).group(1) for entry in cited]
    assert keys == [SENTENCE_BERT, "formal2022distillation", "paria2020flops", "henderson2017efficient", "li2023gte"]
    assert citations_for(["CosineSimilarityLoss"]) == [PAPERS[SENTENCE_BERT]]
