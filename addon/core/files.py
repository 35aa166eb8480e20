"""New files that follow the umask (standard library only: the farm's transfer code imports it)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def new_temp_file(folder: Path, prefix: str, suffix: str = "") -> Path:
    """Create an empty file with a unique name in ``folder`` whose mode follows the umask, as any new file
    does (0644 under umask 022; ``tempfile.mkstemp`` would make it 0600, unreadable to a teammate)."""
    for _ in range(100):
        path = Path(folder) / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name in {folder}")
