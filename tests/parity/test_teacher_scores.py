"""Teacher scores equal the reference's: a bi-encoder's are its similarity of the query embedding (query prompt and
route) and the text embedding (document prompt and route), as `SentenceTransformer.similarity_pairwise` of
`encode_query` and `encode_document` gives them; a cross-encoder's are its `predict` scores, in row order."""

import pytest
import torch
from helpers.mining import mine_with_embedtrain, mine_with_reference
from helpers.mining_scorer import ReferenceCrossEncoderScorer, make_tiny_cross_encoder
from sentence_transformers import SentenceTransformer

from embedtrain.evaluation.mining.progress import NoProgress
from embedtrain.evaluation.mining.scoring import BiEncoderScorer, score_columns
from embedtrain.models.io import load_model, save_model

pytestmark = pytest.mark.usefixtures("one_thread")

QUERIES = ["a man plays guitar", "who reads a book", "the dog runs in the park", "a man plays guitar"]
CANDIDATES = [["a man is playing", "a child reads", "dogs run", "a guitar"],
              ["the rain is cold", "a book on the table", "the cat sits", "people ride a bus"],
              ["a green park", "the weather is lovely", "a bird", "a man plays guitar"]]


@pytest.fixture(scope="module")
def model_with_prompts(tiny_checkpoint, tmp_path_factory):
    """The tiny BERT saved with query and document prompts, which both libraries apply by default."""
    model = load_model(tiny_checkpoint)
    model.prompts = {"query": "query: ", "document": "document: "}
    path = tmp_path_factory.mktemp("prompted") / "model"
    save_model(model, path)
    return path


@pytest.mark.parametrize("similarity", [None, "dot", "euclidean"])
def test_bi_encoder_scores_equal_the_reference(model_with_prompts, similarity, tiny_checkpoint):
    reference = SentenceTransformer(str(model_with_prompts), device="cpu")
    if similarity:
        reference.similarity_fn_name = similarity
    scorer = BiEncoderScorer(load_model(model_with_prompts), similarity=similarity)
    scores = score_columns(QUERIES, CANDIDATES, scorer, batch_size=3, progress=NoProgress())
    queries = reference.encode_query(QUERIES, convert_to_tensor=True)
    expected = torch.stack([reference.similarity_pairwise(queries, reference.encode_document(column,
                                                                                             convert_to_tensor=True))
                            for column in CANDIDATES], dim=1)
    torch.testing.assert_close(scores, expected.float(), rtol=0, atol=2e-5)
    unprompted = score_columns(QUERIES, CANDIDATES, BiEncoderScorer(load_model(tiny_checkpoint), similarity=similarity),
                               batch_size=3, progress=NoProgress())
    assert not torch.allclose(scores, unprompted, atol=1e-3)  # the prompts were applied


def test_cross_encoder_scores_are_its_predictions_in_row_order(tmp_path):
    cross_encoder = make_tiny_cross_encoder(tmp_path / "cross-encoder")
    scores = score_columns(QUERIES, CANDIDATES, ReferenceCrossEncoderScorer(cross_encoder), batch_size=2,
                           progress=NoProgress())
    expected = [[float(cross_encoder.predict([(query, column[row])], show_progress_bar=False)[0])
                 for column in CANDIDATES] for row, query in enumerate(QUERIES)]
    torch.testing.assert_close(scores, torch.tensor(expected), rtol=0, atol=1e-5)


def test_mining_with_the_models_prompts_equals_the_reference(model_with_prompts):
    """Without prompt options, queries get the model's `query` prompt and the corpus its `document` prompt in both."""
    anchors = [query for query in QUERIES[:3] for _ in range(2)]
    positives = [text for column in CANDIDATES for text in column[:2]]
    options = {"num_negatives": 2, "output_scores": True}
    ours = mine_with_embedtrain(model_with_prompts, anchors, positives, options,
                                corpus=[text for column in CANDIDATES for text in column])
    theirs = mine_with_reference(model_with_prompts, anchors, positives, options,
                                 corpus=[text for column in CANDIDATES for text in column])
    assert ours["negative"] == theirs["negative"]
    torch.testing.assert_close(torch.tensor(ours["scores"]), torch.tensor(theirs["scores"]), rtol=0, atol=1e-5)
