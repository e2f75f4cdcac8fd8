"""``--detach`` on ``gradfx run``, ``chain`` and ``batch``: after the command's checks, its work goes to a
background job (:mod:`gradfx.engine.jobs`) instead of running here, and the command returns at once."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DETACH_HELP = ("run in the background as a job that outlives this terminal (an SSH connection that drops, a "
               "closed laptop); prints the job's id; 'gradfx jobs' lists, follows, cancels and resumes jobs")


def add_detach(p: argparse.ArgumentParser) -> None:
    p.add_argument("--detach", action="store_true", help=DETACH_HELP)


def detach(kind: str, spec: dict[str, Any], *, what: str, device: str | None, every_gpu: bool = False,
           quiet: bool = False) -> int:
    """Submit the job, print its id (alone with ``quiet``) and how to follow it; the exit status."""
    from gradfx.engine import jobs

    job = jobs.submit(kind, spec, what=what, devices=jobs.device_keys(device, every_gpu=every_gpu))
    if quiet:
        print(job.id)
        return 0
    devices = ", ".join(job.request["devices"])
    print(f"job {job.id} queued on {devices}: {what}")
    print(f"follow it with 'gradfx jobs follow {job.id}'; 'gradfx jobs' lists jobs; "
          f"'gradfx jobs cancel {job.id}' stops it", file=sys.stderr)
    return 0
