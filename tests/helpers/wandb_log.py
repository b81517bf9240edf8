"""Reading back an offline W&B run's transaction log (`run-<id>.wandb`), which this wandb version no longer ships a
Python reader for.

The file is a LevelDB-style log: a 7-byte header (b":W&B", a 2-byte magic, a version byte), then 32 KiB blocks of
records, each with a 7-byte header (CRC32C: 4 bytes, length: 2 bytes little-endian, type: 1 byte: FULL, or FIRST /
MIDDLE / LAST for a record split across blocks); a block's tail too short for a header is zero padding. Each record
is one of wandb's own protobuf `Record`s.
"""

import json
from pathlib import Path

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    """wandb's `Record` protobufs, in order."""
    from wandb.proto import wandb_internal_pb2  # the trackers extra

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    position, pending, found = HEADER, b"", []
    while position + HEADER <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < HEADER:  # zero padding up to the next block
            position += left_in_block
            continue
        length = int.from_bytes(data[position + 4:position + 6], "little")
        kind = data[position + 6]
        payload = data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind == 0 and length == 0:  # preallocated, unwritten space
            break
        pending = payload if kind in (FULL, FIRST) else pending + payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found


def history(path: Path) -> list[dict]:
    """Every `run.log` call: {key: value, ..., "_step": step}."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def config(path: Path) -> dict:
    """The run's config: the run record's, updated by every config record."""
    values = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        updates = record.run.config.update if kind == "run" else record.config.update if kind == "config" else []
        values |= {item.key: json.loads(item.value_json) for item in updates}
    return values


def run_name(path: Path) -> str:
    return next(r.run.display_name for r in records(path) if r.WhichOneof("record_type") == "run")
