"""The last kilobytes of what a Blender child printed during an attempt (its task log).

The supervisor reads the child's stdout and stderr through one pipe in a thread: every line still goes to
the supervisor's own stderr (what the operator sees), and the last ``keep`` bytes since the current attempt
began are kept, to travel with the attempt's result and be shown by ``synthfarm logs`` and the dashboard.

The result reaches the supervisor on a socket, faster than the reader thread may have read the pipe (under load,
or with a slow terminal to echo to): the child prints an end mark for the attempt just before it sends the
result, and the supervisor takes the attempt's log only once its reader has read that mark (:meth:`until_end`).
"""
from __future__ import annotations

import sys
import threading
from collections import deque
from typing import IO

KEEP = 16 * 1024  # bytes of each attempt's log the farm keeps
END_MARK = b"\x1esynthfarm-attempt-end "  # + the attempt id: a line the child prints after an attempt's output
CATCH_UP_SECONDS = 5.0  # the longest a result waits for the reader (a stuck terminal must not stop the farm)


def end_mark(attempt_id: str) -> bytes:
    """The line a child prints when an attempt's output is complete, just before it sends the result."""
    return END_MARK + attempt_id.encode() + b"\n"


class OutputTail:
    def __init__(self, stream: IO[bytes], keep: int = KEEP, echo: IO[bytes] | None = None):
        self.keep = keep
        self._lines: deque[bytes] = deque()
        self._size = 0
        self._lock = threading.Lock()
        self._read_up_to = threading.Condition(self._lock)  # notified at each end mark and at the end of output
        self._ended: str | None = None  # the attempt whose end mark was read last
        self._closed = False  # the child's output ended
        self._echo = echo if echo is not None else getattr(sys.stderr, "buffer", None)
        self._thread = threading.Thread(target=self._read, args=(stream,), name="child-output", daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            if line.startswith(END_MARK):  # neither echoed nor kept
                with self._lock:
                    self._ended = line[len(END_MARK):].decode(errors="replace").strip()
                    self._read_up_to.notify_all()
                continue
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
        with self._lock:
            self._closed = True
            self._read_up_to.notify_all()

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

    def until_end(self, attempt_id: str, timeout: float = CATCH_UP_SECONDS) -> str:
        """:meth:`text` once the reader has read the child's end mark for ``attempt_id`` (all the child printed
        before it sent the attempt's result), or the child's output ended, or after ``timeout``."""
        with self._read_up_to:
            self._read_up_to.wait_for(lambda: self._ended == attempt_id or self._closed, timeout)
        return self.text()

    def wait(self, timeout: float = 5.0) -> None:
        """Until the child's output is closed and read (after it exited)."""
        self._thread.join(timeout)
