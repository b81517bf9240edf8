"""One run per output directory: a lock file naming the process that holds it.

The lock is written in full to a private file and then hard-linked into place: the link either
creates `.embedtrain.lock` with its whole content or fails because it exists, so two processes
never both win and nobody reads a half-written lock. A lock left by a process that died (kill -9)
on this host is taken over with a warning; a lock from another host cannot be checked and is
always respected.
"""

import json
import logging
import os
import socket
import time
from pathlib import Path

from embedtrain.errors import RecipeError

logger = logging.getLogger(__name__)

LOCK_FILE = ".embedtrain.lock"


class OutputDirLock:
    """Held by the main process from before anything is written into the output directory until the run ends."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / LOCK_FILE
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._try_create():
            return
        holder = _read_holder(self.path)
        if not _is_stale(holder):
            raise RecipeError(f"training.output_dir: {self.path.parent} is in use by another run ({_describe(holder)}, "
                              f"lock file {self.path}); wait for it to finish or choose another output directory")
        logger.warning("taking over the lock of a run that is no longer running (%s): %s", _describe(holder), self.path)
        self.path.unlink(missing_ok=True)
        if not self._try_create():  # another process took it over between our check and our unlink
            raise RecipeError(f"training.output_dir: {self.path.parent} is in use by another run "
                              f"({_describe(_read_holder(self.path))}); choose another output directory")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def _try_create(self) -> bool:
        private = self.path.with_name(f"{LOCK_FILE}.{os.getpid()}")
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        private.write_text(json.dumps(holder) + "\n", encoding="utf-8")
        try:
            os.link(private, self.path)  # atomic: fails if the lock exists
            self.held = True
        except FileExistsError:
            self.held = False
        finally:
            private.unlink(missing_ok=True)
        return self.held


def _read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _is_stale(holder: dict) -> bool:
    """A lock whose process is gone: only decidable on the host that wrote it."""
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _describe(holder: dict) -> str:
    if not holder:
        return "holder unknown"
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('started')}"
