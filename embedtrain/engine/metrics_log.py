"""`metrics.jsonl`: one JSON object per line, for training logs and evaluations."""

import json
from pathlib import Path


class MetricsLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict) -> None:
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def truncate_after(self, step: int) -> None:
        """Drop records written after `step` (by a run that was killed and is now resumed from that step)."""
        kept = [record for record in self.read() if record["step"] <= step]
        self.path.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
