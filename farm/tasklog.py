"""The last kilobytes of what a Blender child printed during an attempt (its task log).

The supervisor reads the child's stdout and stderr through one pipe in a thread: every line still goes to
the supervisor's own stderr (what the operator sees), and the last ``keep`` bytes since the current attempt
began are kept, to travel with the attempt's result and be shown by ``synthfarm logs`` and the dashboard.
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from typing import IO

KEEP = 16 * 1024  # bytes of each attempt's log the farm keeps


class OutputTail:
    def __init__(self, stream: IO[bytes], keep: int = KEEP, echo: IO[bytes] | None = None):
        self.keep = keep
        self._lines: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._echo = echo if echo is not None else getattr(sys.stderr, "buffer", None)
        self._thread = threading.Thread(target=self._read, args=(stream,), name="child-output", daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            if self._echo is not None:
                try:
                    self._echo.write(line)
                    self._echo.flush()
                except (OSError, ValueError):  # our own stderr closed: keep collecting
                    self._echo = None
            with self._lock:
                self._lines.append(line[-self.keep:])
                self._size += len(self._lines[-1])
                while self._size > self.keep and len(self._lines) > 1:
                    self._size -= len(self._lines.popleft())
        stream.close()

    def restart(self) -> None:
        """A new attempt begins: forget what came before."""
        with self._lock:
            self._lines.clear()
            self._size = 0

    def text(self) -> str:
        """What was printed since :meth:`restart`, at most ``keep`` bytes (the end of it)."""
        with self._lock:
            data = b"".join(self._lines)[-self.keep:]
        return data.decode("utf-8", errors="replace")

    def wait(self, timeout: float = 5.0) -> None:
        """Until the child's output is closed and read (after it exited)."""
        self._thread.join(timeout)
