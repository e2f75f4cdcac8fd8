"""``gradfx jobs [list|follow|cancel|resume|clean] [ID...]``: the background jobs that ``--detach`` and the TUI
start (:mod:`gradfx.engine.jobs`).

- ``list`` (the default): id, status, progress, device, start time, ETA and what each job runs; a failed job's
  reason under it. ``--json`` for scripts.
- ``follow ID``: live progress as ``gradfx run`` shows it, until the job ends; then its closing lines and its
  exit status: 0 done, 130 cancelled, 3 a non-finite loss (as the command's own), 1 any other failure.
  Ctrl-C stops following; the job goes on.
- ``cancel ID...``: stop after the current step, writing the image so far (as Ctrl-C does).
- ``resume ID``: start a failed or cancelled job again from its checkpoint (a batch: its manifest).
- ``clean [ID...]``: remove finished jobs' state (not their outputs): every done job, with ``--all`` the
  failed and cancelled ones too; named jobs whatever their end.

An id may be shortened to any unique prefix.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gradfx.engine import jobs
from gradfx.engine.errors import JobError, ParameterError

from .. import progressbar
from .batch import BatchBar, _clock

ACTIONS = ("list", "follow", "cancel", "resume", "clean")
#: seconds between looks at a followed job
POLL = 0.2


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "jobs", help="background jobs (--detach, the TUI): list, follow, cancel, resume, clean",
        description="Background jobs, started by 'gradfx run|chain|batch ... --detach' and by the TUI. Actions: "
                    "list (default); follow ID (live progress until it ends; Ctrl-C stops following only); cancel "
                    "ID... (stop after the current step, keeping the image so far); resume ID (a failed or "
                    "cancelled job, from its checkpoint); clean [ID...] (remove done jobs' state, --all also failed "
                    f"and cancelled ones; outputs stay). State folder: ${jobs.ENV}, else "
                    "$XDG_STATE_HOME/gradfx/jobs, else ~/.local/state/gradfx/jobs.")
    p.add_argument("action", nargs="?", default="list", choices=ACTIONS, help="what to do (default: list)")
    p.add_argument("ids", nargs="*", metavar="ID", help="job ids (any unique prefix)")
    p.add_argument("--all", action="store_true", help="clean: also failed and cancelled jobs (no resume after)")
    p.add_argument("--json", action="store_true", help="list: one JSON object per job")
    p.add_argument("-q", "--quiet", action="store_true", help="follow: no progress bar, only the closing lines")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if args.action in ("follow", "resume") and len(args.ids) != 1:
        raise ParameterError(f"'gradfx jobs {args.action}' takes one job id; 'gradfx jobs' lists them")
    if args.action == "cancel" and not args.ids:
        raise ParameterError("'gradfx jobs cancel' takes job ids; 'gradfx jobs' lists them")
    if args.action == "list":
        if args.ids:
            raise ParameterError("'gradfx jobs' lists every job; 'gradfx jobs follow ID' shows one")
        return list_jobs(as_json=args.json)
    if args.action == "follow":
        return follow(jobs.find(args.ids[0]), quiet=args.quiet)
    if args.action == "cancel":
        for job in [jobs.find(i) for i in args.ids]:
            state = jobs.cancel(job)
            if state.get("status") in jobs.FINISHED:
                print(f"job {job.id} {state['status']}")
            else:
                print(f"job {job.id}: cancelling; it stops after its current step and writes the image so far")
        return 0
    if args.action == "resume":
        job = jobs.resume(jobs.find(args.ids[0]))
        print(f"job {job.id} queued again on {', '.join(job.request['devices'])}: {job.request['what']}")
        print(f"follow it with 'gradfx jobs follow {job.id}'", file=sys.stderr)
        return 0
    removed = jobs.clean([jobs.find(i) for i in args.ids] if args.ids else None, everything=args.all)
    kept = [j for j in jobs.all_jobs() if _status(j) in ("failed", "cancelled")] if not args.ids else []
    print(f"removed {len(removed)} job(s)" + (f": {', '.join(j.id for j in removed)}" if removed else "")
          + (f"; kept {len(kept)} failed or cancelled (resumable; --all removes them)" if kept and not args.all
             else ""))
    return 0


def _status(job: jobs.Job) -> str:
    try:
        return str(job.refresh().get("status"))
    except JobError:
        return "damaged"


def row(job: jobs.Job) -> dict[str, Any]:
    """What ``gradfx jobs`` (and ``--json``) shows of a job."""
    state = job.refresh()
    request = job.request
    progress = jobs.read_progress(job)
    status = state.get("status")
    return {"id": job.id, "kind": request["kind"], "what": request["what"], "status": status,
            "progress": None if (shown := jobs.shown_fraction(status, progress)) is None else round(shown, 4),
            "eta": None if progress is None or status != "running" else progress.eta,
            "devices": request["devices"], "created": request.get("created"), "started": state.get("started"),
            "finished": state.get("finished"), "error": state.get("error"), "outputs": state.get("outputs") or [],
            "pid": (state.get("worker") or state.get("supervisor") or {}).get("pid"), "folder": str(job.folder)}


def list_jobs(*, as_json: bool = False) -> int:
    rows = []
    for job in jobs.all_jobs():
        try:
            rows.append(row(job))
        except JobError as exc:  # damaged, or removed meanwhile
            rows.append({"id": job.id, "status": "damaged", "error": str(exc), "what": "?"})
    if as_json:
        for r in rows:
            print(json.dumps(r))
        return 0
    if not rows:
        print(f"no jobs (in {jobs.root()}); 'gradfx run ... --detach' starts one")
        return 0
    print(f"{'ID':<7} {'STATUS':<10} {'PROGRESS':>8}  {'DEVICE':<6} {'STARTED':<12} {'ETA':>8}  WHAT")
    for r in rows:
        progress = "-" if r.get("progress") is None else f"{r['progress']:.0%}"
        eta = "-" if r.get("eta") is None else _clock(r["eta"])
        print(f"{r['id']:<7} {r['status']:<10} {progress:>8}  {','.join(r.get('devices') or ['?']):<6} "
              f"{_when(r.get('started')):<12} {eta:>8}  {r['what']}")
        if r.get("error") and r["status"] != "done":
            hint = f" ('gradfx jobs resume {r['id']}')" if r["status"] in ("failed", "cancelled") else ""
            print(f"{'':<8}{r['error']}{hint}")
    return 0


def _when(stamp: float | None) -> str:
    if not stamp:
        return "-"
    when = datetime.fromtimestamp(stamp)
    return when.strftime("%H:%M:%S") if when.date() == datetime.now().date() else when.strftime("%b %d %H:%M")


def follow(job: jobs.Job, *, quiet: bool = False) -> int:
    """Show the job's progress until it ends (Ctrl-C: stop following); the exit status its command would
    have."""
    batch = job.request["kind"] == "batch"
    bar: Any = BatchBar(disable=quiet) if batch else progressbar.ProgressBar(disable=quiet)
    said, shown = None, 0.0
    try:
        with bar:
            while True:
                state = job.refresh()
                status = state.get("status")
                if status != said and not quiet:
                    said = status
                    print(f"job {job.id} {_describe(job, state)}", file=sys.stderr)
                progress = jobs.read_progress(job)
                if progress is not None and progress.written != shown:
                    shown = progress.written
                    if batch and progress.batch is not None:
                        bar.update(progress.batch_event())
                    elif not batch and progress.event is not None:
                        bar.update(progress.event)
                if status in jobs.FINISHED:
                    break
                time.sleep(POLL)
    except KeyboardInterrupt:
        print(f"\ngradfx: stopped following; job {job.id} goes on ('gradfx jobs follow {job.id}')", file=sys.stderr)
        return 130
    return _closing(job, state, quiet=quiet)


def _describe(job: jobs.Job, state: dict[str, Any]) -> str:
    status = state.get("status")
    if status == "queued":
        ahead = jobs.holder(job.request["devices"], job)
        return "queued" + (f", after job {ahead.id} on {', '.join(job.request['devices'])}" if ahead else "")
    if status == "running":
        return f"running (pid {(state.get('worker') or {}).get('pid', '?')}): {job.request['what']}"
    return str(status)


def _closing(job: jobs.Job, state: dict[str, Any], *, quiet: bool) -> int:
    """The finished job's closing lines, as its command prints them, and that command's exit status."""
    status, error = state.get("status"), state.get("error")
    report, outputs = job.report(), state.get("outputs") or []
    code = {"done": 0, "cancelled": 130}.get(str(status), 1)
    if job.request["kind"] == "batch" and report is not None:
        failed = report.get("failed") or []
        for key, message in failed:
            print(f"gradfx: failed: {key}: {message}", file=sys.stderr)
        print(f"batch: {len(report.get('done') or [])} done, {len(failed)} failed, {len(report.get('skipped') or [])} "
              f"already done of {report.get('total')} in {report.get('seconds', 0):.1f}s; manifest "
              f"{report.get('manifest')}", file=sys.stderr)
    elif report is not None and outputs:  # a run or chain wrote its image: what the command itself says
        code = progressbar.finish(SimpleNamespace(report=report, partial=bool(report.get("partial"))),
                                  Path(outputs[0]), interrupted=status == "cancelled", quiet=quiet)
    elif error:  # it ended before writing anything (a bad file, killed)
        print(f"gradfx: job {job.id} {status}: {error}", file=sys.stderr)
    if status in ("failed", "cancelled"):
        print(f"gradfx: to finish it, 'gradfx jobs resume {job.id}'", file=sys.stderr)
    return code if status != "failed" or code == 3 else 1
