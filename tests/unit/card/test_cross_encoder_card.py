"""A cross-encoder's model card is a cross-encoder's: reranker tags, the text-ranking pipeline tag (text-classification
for several labels), and a usage snippet with sentence-transformers' CrossEncoder that runs on the saved model; never
a bi-encoder's card."""

import pytest
from helpers.tiny_cross_encoders import make_tiny_classifier
from huggingface_hub import ModelCard

from embedtrain.card.model_card import render_model_card
from embedtrain.models import save_model
from embedtrain.models.cross_encoder_io import load_cross_encoder

from .subjects import recipe_for, subject_for


def card_of(model, tmp_path) -> str:
    return render_model_card(subject_for(model, recipe_for("cross_encoder", tmp_path)), {"dev_spearman_cosine": 0.5}, [])


def snippet(card: str) -> str:
    return card.split("```python\n")[1].split("```")[0]


@pytest.mark.parametrize("num_labels, pipeline_tag", [(1, "text-ranking"), (3, "text-classification")])
def test_a_cross_encoder_gets_a_cross_encoder_card(tmp_path, num_labels, pipeline_tag):
    model = load_cross_encoder(make_tiny_classifier(tmp_path / "classifier", num_labels))
    card = card_of(model, tmp_path)
    meta = ModelCard(card).data
    assert meta.pipeline_tag == pipeline_tag and meta.base_model == "org/encoder"
    assert {"sentence-transformers", "cross-encoder", "reranker", "generated_from_trainer"} <= set(meta.tags)
    assert not {"sentence-similarity", "feature-extraction", "dense"} & set(meta.tags)
    assert "SentenceTransformer" not in card and "embeddings" not in card
    assert f"| Number of labels | {num_labels} |" in card and "CrossEncoder(architecture=BertForSequenceClassification" in card
    code = snippet(card)
    assert "from sentence_transformers import CrossEncoder" in code and "model.predict(pairs" in code
    assert ("model.rank(" in code) == (num_labels == 1)


@pytest.mark.parametrize("num_labels", [1, 3])
def test_the_usage_snippet_runs_on_the_saved_model(tmp_path, num_labels):
    model = load_cross_encoder(make_tiny_classifier(tmp_path / "classifier", num_labels),
                               prompts={"query": "query: "}, default_prompt_name="query")
    save_model(model, tmp_path / "model")
    code = snippet(card_of(model, tmp_path))
    assert "prompt='query: '" in code  # the reference does not read this layout's prompts: the snippet passes it
    namespace: dict = {}
    exec(code.replace("path/to/this/model", str(tmp_path / "model")), namespace)  # noqa: S102 - our own snippet
    if num_labels == 1:
        assert [entry["corpus_id"] for entry in namespace["ranking"]] == \
            sorted(range(2), key=lambda index: -float(namespace["scores"][index]))
    else:
        assert namespace["logits"].shape == (2, 3)
