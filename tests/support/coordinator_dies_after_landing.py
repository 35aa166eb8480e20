"""`synthfarm coordinator ...` (the arguments after this script's name) that kills itself with SIGKILL right after
the files of a landing are committed to their dataset, before that cycle's state commit: the crash the landing's
order (files, then state, then jobs.jsonl) is made for. Which landing: ``SYNTHFARM_TEST_DIE_AT_LANDING`` (1, the
first, unless set); each landing before it is held ``SYNTHFARM_TEST_HOLD_SECONDS`` (0 unless set) after its files,
so that what workers send meanwhile is all there for the next cycle. Nothing else of the coordinator is changed."""
import os
import signal
import time

from synthfarm.addon.core.dataset.native import DatasetWriter
from synthfarm.cli import main

commit_stagings = DatasetWriter.commit_stagings
die_at = int(os.environ.get("SYNTHFARM_TEST_DIE_AT_LANDING", "1"))
hold = float(os.environ.get("SYNTHFARM_TEST_HOLD_SECONDS", "0"))
landings = 0


def commit_then_die(self, stagings):
    global landings
    stems = commit_stagings(self, stagings)
    landings += 1
    if landings == die_at:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(hold)
    return stems


DatasetWriter.commit_stagings = commit_then_die
main(prog_name="synthfarm")
