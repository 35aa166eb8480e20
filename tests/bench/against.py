"""``--against DIR``, shared by the benches that interleave another version of synthfarm with this one."""
from __future__ import annotations

import argparse
from pathlib import Path


def checked_against(parser: argparse.ArgumentParser, path: Path | None) -> Path | None:
    """``path`` resolved, or the parser's error when it holds no synthfarm package (a wrong folder would make the
    other version's runs import this one's installed package: both sides the same code, silently)."""
    if path is None:
        return None
    if not (path / "synthfarm" / "__init__.py").is_file():
        parser.error(f"--against {path}: no synthfarm/__init__.py in it; give the folder that holds the package "
                     "(e.g. git archive HEAD | tar -x -C DIR/synthfarm)")
    return path.resolve()
