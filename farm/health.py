"""Liveness for process supervisors (Kubernetes probes, systemd watchdogs): a file that a coordinator's or a
worker's loop rewrites at each heartbeat, and a check of its age.

The file is small JSON (the time, the process's role and what it is doing); it is replaced atomically so a
probe never reads half of it. A loop that hangs stops rewriting it; ``synthfarm health FILE --max-age S``
then exits non-zero and the supervisor restarts the process.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path


class HealthFile:
    def __init__(self, path: Path, every: float = 1.0):
        self.path, self.every = Path(path), every
        self._next = 0.0

    def beat(self, **state) -> None:
        """Rewrite the file (at most every ``every`` seconds)."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({"time": time.time(), "pid": os.getpid(), **state}))
        os.replace(tmp, self.path)


def check(path: Path, max_age: float) -> tuple[bool, str]:
    """(healthy, why): the file exists and was rewritten within ``max_age`` seconds."""
    try:
        state = json.loads(Path(path).read_text())
        age = time.time() - float(state["time"])
    except FileNotFoundError:
        return False, f"{path} does not exist (the process has not started its loop, or writes elsewhere)"
    except (OSError, ValueError, KeyError, TypeError) as err:
        return False, f"{path} is unreadable: {err}"
    detail = ", ".join(f"{k} {v}" for k, v in state.items() if k not in ("time", "pid"))
    if age > max_age:
        return False, f"last heartbeat {age:.0f} s ago (more than {max_age:g} s): the loop is stuck" + \
            (f"; {detail}" if detail else "")
    return True, f"heartbeat {age:.1f} s ago" + (f"; {detail}" if detail else "")
