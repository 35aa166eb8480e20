"""`synthfarm coordinator ...` (the arguments after this script's name) that kills itself with SIGKILL right after
the files of its first landing are committed to their dataset, before that cycle's state commit: the crash the
landing's order (files, then state, then jobs.jsonl) is made for. Nothing else of the coordinator is changed."""
import os
import signal

from synthfarm.addon.core.dataset.native import DatasetWriter
from synthfarm.cli import main

commit_stagings = DatasetWriter.commit_stagings


def commit_then_die(self, stagings):
    stems = commit_stagings(self, stagings)
    os.kill(os.getpid(), signal.SIGKILL)
    return stems


DatasetWriter.commit_stagings = commit_then_die
main(prog_name="synthfarm")
