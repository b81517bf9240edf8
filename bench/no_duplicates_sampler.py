"""How fast the no_duplicates sampler plans an epoch of a large dataset (a benchmark, not a test).

Builds N rows of (anchor, positive, negative) texts where a share of the texts repeat, then times
hashing the texts (text_keys) and planning one epoch, and checks that no batch holds a text twice.

    python bench/no_duplicates_sampler.py --rows 1000000 --batch-size 32 --duplicate-share 0.05
"""

import argparse
import json
import random
import time

import pyarrow as pa

from embedtrain.data.samplers import DatasetBatching, MultiDatasetBatchSampler, text_keys


def make_column(rows: int, prefix: str, duplicate_share: float, rng: random.Random) -> pa.ChunkedArray:
    """Unique texts, except `duplicate_share` of the rows, which repeat the text of another row."""
    texts = [f"{prefix} text number {row}" for row in range(rows)]
    for row in rng.sample(range(rows), int(rows * duplicate_share)):
        texts[row] = texts[rng.randrange(rows)]
    return pa.chunked_array([texts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--duplicate-share", type=float, default=0.05)
    args = parser.parse_args()
    rng = random.Random(0)
    columns = [make_column(args.rows, name, args.duplicate_share, rng) for name in ("anchor", "positive", "negative")]

    started = time.perf_counter()
    keys = text_keys(columns)
    hashed = time.perf_counter()
    sampler = MultiDatasetBatchSampler([DatasetBatching(args.rows, "no_duplicates", keys=keys)], args.batch_size,
                                       False, seed=0)
    batches = sampler.plan()
    planned = time.perf_counter()

    assert sorted(row for batch in batches for row in batch) == list(range(args.rows))
    assert all(len({key for row in batch for key in keys[row].tolist()}) == sum(len(set(keys[row].tolist())) for row in batch)
               for batch in batches[:1000])
    result = {"rows": args.rows, "batch_size": args.batch_size, "duplicate_share": args.duplicate_share,
              "text_keys_seconds": round(hashed - started, 2), "plan_seconds": round(planned - hashed, 2),
              "batches": len(batches), "full_batches": sum(len(b) == args.batch_size for b in batches)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
