"""Commands that make training data with a model: mine (hard negatives) and score (a teacher's scores)."""

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from embedtrain.cli.app import app
from embedtrain.cli.boundary import user_errors
from embedtrain.console import console


class CrossEncoderActivation(str, Enum):
    """What a cross-encoder's logits become (embedtrain.modules.dense.Activation, not imported: it loads torch)."""

    identity = "identity"
    sigmoid = "sigmoid"
    tanh = "tanh"
    relu = "relu"
    gelu = "gelu"


class EmbeddingKind(str, Enum):
    """How `mine` and `score` build an embedding model (a cross-encoder is recognised from its folder)."""

    dense = "dense"
    sparse = "sparse"


class RescoreKind(str, Enum):
    """What the `mine --rescore` model is (embedtrain.evaluation.mining.options.RescoreKind, not imported: it loads
    torch)."""

    auto = "auto"
    cross_encoder = "cross_encoder"
    dense = "dense"
    sparse = "sparse"


MINE_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain mine --data pairs.csv --model sentence-transformers/all-MiniLM-L6-v2 --output mined.parquet

  embedtrain mine --data trecqa/train_pairs.csv --model ./my-model --output mined.jsonl --range-min 5 --range-max 50 --relative-margin 0.05 --sampling random

  embedtrain mine --data pairs.csv --corpus passages.jsonl --corpus-column text --model ./my-model --output hard.parquet --output-format n-tuple --num-negatives 5 --output-scores
"""


@app.command(epilog=MINE_EXAMPLES)
def mine(
    data: Annotated[str, typer.Option("--data", help="(anchor, positive) pairs, or labelled pairs (anchor, text, "
                                                     "label 0/1) whose label-1 rows are the positives.",
                                      show_default=False)],
    model: Annotated[str, typer.Option("--model", help="The embedding model (dense or sparse): a folder or hub id.",
                                       show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write: .parquet or .jsonl (and "
                                                                "OUTPUT.provenance.json beside it).", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="Split of --data.")] = "train",
    columns: Annotated[str | None, typer.Option("--columns", metavar="INPUT=COLUMN,...",
                                                help="e.g. anchor=question,positive=answer[,label=label]; default: "
                                                     "by position, the label by name.")] = None,
    corpus: Annotated[str | None, typer.Option("--corpus", help="More candidate texts (a file or hub id), beside the "
                                                                "positives.")] = None,
    corpus_column: Annotated[str | None, typer.Option("--corpus-column", help="The text column of --corpus (needed "
                                                                              "when it has several).")] = None,
    rescore: Annotated[str | None, typer.Option("--rescore", help="Re-score the candidates with this model (a "
                                                                  "cross-encoder, or an embedding model); the "
                                                                  "filters and scores then use its scores.")] = None,
    rescore_activation: Annotated[CrossEncoderActivation | None, typer.Option(
        "--rescore-activation", show_default=False, help="The activation of the --rescore cross-encoder's scores, in "
                                                         "place of its own (identity: its logits).")] = None,
    rescore_kind: Annotated[RescoreKind, typer.Option(
        "--rescore-kind", help="What the --rescore model is: auto (its folder says: a saved model's kind, or a "
                               "trained sequence classifier as a cross-encoder), cross_encoder (needs a trained "
                               "classification head), dense or sparse (re-score by embedding similarity; needed for "
                               "a plain checkpoint).")] = RescoreKind.auto,
    kind: Annotated[EmbeddingKind | None, typer.Option("--kind", show_default=False,
                                                   help="Build --model as dense or sparse (default: a saved model's "
                                                        "own kind, else dense).")] = None,
    num_negatives: Annotated[int | None, typer.Option("--num-negatives", help="Negatives per query (default: 3).",
                                                      show_default=False)] = None,
    range_min: Annotated[int | None, typer.Option("--range-min", help="Skip this many of the best candidates left "
                                                                      "after the filters (default: 0).",
                                                  show_default=False)] = None,
    range_max: Annotated[int | None, typer.Option("--range-max", help="Keep candidates up to this rank (default: "
                                                                      "enough for num_negatives).",
                                                  show_default=False)] = None,
    absolute_margin: Annotated[float | None, typer.Option(
        "--absolute-margin", help="Keep a candidate only if it scores this much below the query's lowest positive.",
        show_default=False)] = None,
    relative_margin: Annotated[float | None, typer.Option(
        "--relative-margin", help="Keep a candidate only if it scores this share (e.g. 0.05) below the lowest "
                                  "positive.", show_default=False)] = None,
    max_score: Annotated[float | None, typer.Option("--max-score", help="Drop candidates scoring above this.",
                                                    show_default=False)] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Drop candidates scoring below this.",
                                                    show_default=False)] = None,
    sampling: Annotated[str | None, typer.Option("--sampling", help="top (the best left) or random (default: top).",
                                                 show_default=False)] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of --sampling random (default: 0).",
                                             show_default=False)] = None,
    output_format: Annotated[str | None, typer.Option(
        "--output-format", help="triplet, n-tuple, labeled-pair or labeled-list (default: triplet).",
        show_default=False)] = None,
    output_scores: Annotated[bool, typer.Option("--output-scores", help="Add the scores (labeled formats: in place "
                                                                        "of the 0/1 labels).")] = False,
    query_prompt: Annotated[str | None, typer.Option("--query-prompt", help="Prefix for queries.")] = None,
    query_prompt_name: Annotated[str | None, typer.Option("--query-prompt-name", help="A named prompt of the model "
                                                                                      "for queries.")] = None,
    corpus_prompt: Annotated[str | None, typer.Option("--corpus-prompt", help="Prefix for corpus texts.")] = None,
    corpus_prompt_name: Annotated[str | None, typer.Option("--corpus-prompt-name", help="A named prompt of the "
                                                                                        "model for corpus texts.")] = None,
    similarity: Annotated[str | None, typer.Option("--similarity", help="cosine, dot, euclidean or manhattan "
                                                                        "(default: the model's).",
                                                   show_default=False)] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Texts (pairs when re-scoring) per forward "
                                                                        "pass (default: 32).", show_default=False)] = None,
    chunk_size: Annotated[int | None, typer.Option("--chunk-size", help="Queries and corpus texts scored at once "
                                                                        "(default: 8192).", show_default=False)] = None,
    search: Annotated[str | None, typer.Option("--search", help="exact, or faiss (pip install faiss-cpu) "
                                                                "(default: exact).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """Mine hard negatives for (query, positive) pairs with an embedding model, by the rules of the reference's
    mine_hard_negatives; write them as training rows with a provenance sidecar, and show what was kept and why."""
    from embedtrain.commands.mine import MineRequest, mining_report, run_mine
    from embedtrain.console import RichProgress

    given = {"num_negatives": num_negatives, "range_min": range_min, "range_max": range_max,
             "absolute_margin": absolute_margin, "relative_margin": relative_margin, "max_score": max_score,
             "min_score": min_score, "sampling": sampling, "seed": seed, "output_format": output_format,
             "output_scores": output_scores or None, "query_prompt": query_prompt,
             "query_prompt_name": query_prompt_name, "corpus_prompt": corpus_prompt,
             "corpus_prompt_name": corpus_prompt_name, "similarity": similarity, "batch_size": batch_size,
             "chunk_size": chunk_size, "search": search}
    request = MineRequest(data, model, output, split=split, columns=columns, corpus=corpus, corpus_column=corpus_column,
                          rescore=rescore, rescore_activation=rescore_activation.value if rescore_activation else None,
                          rescore_kind=rescore_kind.value,
                          kind=kind.value if kind else None, force=force,
                          options={key: value for key, value in given.items() if value is not None})
    with user_errors(), RichProgress() as progress:
        outcome = run_mine(request, progress)
    console.print(mining_report(outcome))


SCORE_EXAMPLES = """
[bold]Examples[/bold]

  embedtrain score --data mined.parquet --model cross-encoder/ms-marco-MiniLM-L6-v2 --output scored.parquet

  embedtrain score --data triplets.jsonl --model ./teacher --output margins.jsonl --margins --columns query=q,positive=p,negative=n

  embedtrain score --data mined.parquet --model ./teacher --output rescored.parquet --replace-label --force
"""


@app.command(epilog=SCORE_EXAMPLES)
def score(
    data: Annotated[str, typer.Option("--data", help="(query, positive, negatives...) rows: a file or hub id.",
                                      show_default=False)],
    model: Annotated[str, typer.Option("--model", help="The teacher: a cross-encoder, or an embedding model (its "
                                                       "similarity of query and text).", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The file to write: .parquet or .jsonl (and "
                                                                "OUTPUT.provenance.json beside it).", show_default=False)],
    split: Annotated[str, typer.Option("--split", help="Split of --data.")] = "train",
    columns: Annotated[str | None, typer.Option("--columns", metavar="INPUT=COLUMN,...",
                                                help="e.g. query=q,positive=p,negative=n1,negative=n2; default: by "
                                                     "position.")] = None,
    margins: Annotated[bool, typer.Option("--margins", help="Write positive - negative_i margins (column label) "
                                                            "instead of the scores (column scores).")] = False,
    activation: Annotated[CrossEncoderActivation | None, typer.Option(
        "--activation", show_default=False, help="A cross-encoder --model's activation, in place of its own "
                                                 "(identity: its logits).")] = None,
    replace_label: Annotated[bool, typer.Option("--replace-label", help="Drop the data's label column and write the "
                                                                        "scores in its place.")] = False,
    kind: Annotated[EmbeddingKind | None, typer.Option("--kind", show_default=False,
                                                       help="Build an embedding --model as dense or sparse.")] = None,
    similarity: Annotated[str | None, typer.Option("--similarity", help="An embedding model's similarity "
                                                                        "(default: the model's).",
                                                   show_default=False)] = None,
    query_prompt: Annotated[str | None, typer.Option("--query-prompt", help="Prefix for queries.")] = None,
    query_prompt_name: Annotated[str | None, typer.Option("--query-prompt-name", help="A named prompt for "
                                                                                      "queries.")] = None,
    document_prompt: Annotated[str | None, typer.Option("--document-prompt", help="Prefix for the other texts.")] = None,
    document_prompt_name: Annotated[str | None, typer.Option("--document-prompt-name", help="A named prompt for the "
                                                                                           "other texts.")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Texts or pairs per forward pass "
                                                                        "(default: 32).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """Add a teacher's scores to (query, positive, negatives...) rows: the labels of MarginMSE, DistillKLDiv and
    their sparse and cross-encoder namesakes."""
    from embedtrain.commands.score import ScoreRequest, run_score, scoring_report
    from embedtrain.console import RichProgress

    given = {"margins": margins or None, "activation": activation.value if activation else None,
             "similarity": similarity, "query_prompt": query_prompt,
             "query_prompt_name": query_prompt_name, "document_prompt": document_prompt,
             "document_prompt_name": document_prompt_name, "batch_size": batch_size}
    request = ScoreRequest(data, model, output, split=split, columns=columns, kind=kind.value if kind else None,
                           replace_label=replace_label, force=force,
                           options={key: value for key, value in given.items() if value is not None})
    with user_errors(), RichProgress() as progress:
        outcome = run_score(request, progress)
    console.print(scoring_report(outcome))
