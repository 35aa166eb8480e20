"""The batch workflow end to end on the embedded farm: craft jobs, preview them, submit, await,
download, report, then re-run one job exactly with one change.

    python examples/batch_workflow.py [--recipe assets/recipes/toybox.yaml] [--jobs 4] [--out out/workflow]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from bootstrap import load_synthfarm  # noqa: E402

load_synthfarm()
from synthfarm import Session  # noqa: E402
from synthfarm.addon.core.analytics import write_report  # noqa: E402
from synthfarm.farm.embedded import EmbeddedFarm  # noqa: E402


def main(argv=None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "assets" / "recipes" / "toybox.yaml"))
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--out", default="out/workflow")
    parser.add_argument("--preview", action="store_true", help="render the preview tier only")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    with EmbeddedFarm(out / "farm-state") as farm:
        session = Session(farm.coordinator.clients_endpoint, recipe=args.recipe, out_root=out / "batches",
                          random_state=0)
        print("parameters:", session.parameter_info)
        jobs = [session.sample_input() for _ in range(args.jobs)]
        problems = [p for p in session.validate_job_params(jobs) if p]
        assert not problems, problems
        estimate = session.estimate(jobs, args.preview)
        print(f"{estimate.frames} frames, about {estimate.seconds:.0f} s on one worker ({estimate.source})")
        batch = session.submit(jobs, preview=args.preview, name="workflow")
        print(f"batch {batch.id}: {len(jobs)} jobs")
        batch.await_completion(timeout=3600, progress=lambda done, total: print(f"  {done}/{total} jobs"))
        dataset = batch.download(out / "dataset")
        print("report:", write_report(dataset))
        name, info = next(iter(session.parameter_info.items()))  # one change: the first parameter at its default
        rerun = session.expand_overrides(batch.job_params_seeded_for_rerun()[:1], [{name: info["default"]}])
        again = session.submit(rerun, preview=args.preview, name="rerun")
        again.await_completion(timeout=3600)
        print(f"re-ran job 0 as batch {again.id}; estimate now {session.estimate(jobs, args.preview).source}")
    return dataset


if __name__ == "__main__":
    main()
