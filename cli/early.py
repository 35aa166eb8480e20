"""``synthfarm render`` on the embedded farm starts its first worker's Blender child before the command's own
modules load (about half a second, more on a loaded machine), so that Blender boots meanwhile; the worker takes
it (farm.child.take_early). Reads the command line by hand because click and the commands are not loaded yet: it
acts only on the plain forms (``synthfarm [-v] render ... [--device D]``) and otherwise leaves the start to the
worker, as before."""
from __future__ import annotations

from pathlib import Path

DEVICES = ("auto", "cpu", "gpu")


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def start_blender_early(argv: list[str]) -> bool:
    """Start the child when ``argv`` (sys.argv) runs ``synthfarm render`` on the embedded farm; True if it did."""
    # the program: the synthfarm script, or `python -m synthfarm.cli` (argv[0] is "-m" while it is being found)
    if not argv or not (Path(argv[0]).name == "synthfarm" or argv[0] == "-m"
                        or Path(argv[0]).parts[-2:] == ("cli", "__main__.py")):
        return False
    args = argv[1:]
    words = [a for a in args if not a.startswith("-")]
    if words[:1] != ["render"] or any(a in args for a in ("--in-process", "--help", "-h", "--version")):
        return False
    device = _option(args, "--device") or "auto"
    if device not in DEVICES:
        return False  # click will say what is wrong
    from ..farm.child import child_env, local_gpus, start_early

    start_early(child_env(device, 0 if device != "cpu" and local_gpus() else None))
    return True
