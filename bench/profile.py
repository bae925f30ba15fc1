"""Where a command's time goes in the worker: one kind of command at a number in flight, the CPU each process
spent per command, the worker's context switches per command, and (``--spy``) a py-spy profile of the
worker's threads while they hold the GIL, summed by thread and by function.

    python -m bench.profile running --count 3000           # CPU per create of a running periodic job
    python -m bench.profile running --count 3000 --spy     # and the profile (py-spy, the dev extra)
    python -m bench.profile running --count 3000 --spy --idle   # every thread's time, waits too
    python -m bench.profile paused --in-flight 1
    python -m bench.profile list --in-flight 1 --count 2000 --spy   # job.list's first page of 100
    python -m bench.profile running --count 8000 --replicas 2   # two worker processes on one queue

A profile run is slower than a plain one (py-spy samples 200 times a second): compare rates without ``--spy``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.driver import Driver, command, wait_ready
from bench.harness import (
    CpuMeter,
    fresh_database,
    start_worker,
    unique_prefix,
    worker_env,
)

BODIES = {
    "running": {"periodically": "1 day"},
    "paused": {"periodically": "1 day", "state": "paused"},
    "one-shot": {"when": "2099-01-01T00:00:00+00:00"},
}


#: 200 samples a second, per thread, only of the thread holding the GIL (where the worker's CPU goes)
SPY = ["-r", "200", "--threads", "--nonblocking", "--gil"]
#: ``--idle``: 500 samples a second of every thread, waiting or not (where a thread's time goes)
SPY_IDLE = ["-r", "500", "--threads", "--nonblocking", "--idle"]


#: the reads, of the jobs the warm-up created (200 running periodic jobs)
READS: dict[str, tuple[str, dict[str, Any]]] = {
    "get": ("job.get", {"job_id": "profile-get"}),
    "list": ("job.list", {"limit": 100}),
}


def _body(kind: str, tag: str) -> Any:
    if kind in READS:
        name, args = READS[kind]
        return lambda _i: command(name, args)
    return lambda i: command(
        "job.create", {"handler": "noop", "job_id": f"{tag}-{i}", **BODIES[kind]}
    )


def switches(pid: int) -> dict[str, int]:
    """The context switches of a process's live threads so far (``/proc``): voluntary ones are waits (a
    socket, a lock, the GIL), involuntary ones the kernel's preemptions."""
    total = {"voluntary": 0, "involuntary": 0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread gone meanwhile
            for line in (task / "status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name.endswith("_ctxt_switches"):
                    total["involuntary" if name.startswith("non") else "voluntary"] += int(value)
    return total


def summary(raw: Path, top: int = 40, what: str = "samples holding the GIL") -> str:
    """py-spy's raw (collapsed) stacks as samples per thread and the functions most often on the stack."""
    threads: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        frames = stack.split(";")
        total += int(count)
        threads[re.sub(r"\s*\(\d+\)", "", frames[0])] += int(count)
        names = {re.sub(r" \((.*?):\d+\)", lambda m: " " + Path(m[1]).name, f) for f in frames[1:]}
        for name in names:
            functions[name] += int(count)
    lines = [f"{total} {what}"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in threads.most_common(8)]
    lines += ["functions on the stack:"]
    lines += [f"{100 * n / total:5.1f}%  {name}" for name, n in functions.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("kind", choices=[*BODIES, *READS])
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="worker processes on the same queue (the first is measured)",
    )
    parser.add_argument("--spy", action="store_true", help="record the worker with py-spy")
    parser.add_argument(
        "--idle", action="store_true", help="with --spy: every thread's time, waits included"
    )
    args = parser.parse_args()
    log_dir = Path(tempfile.mkdtemp(prefix="f8a-profile-"))
    prefix = unique_prefix()
    commands = f"{prefix}_commands"
    with fresh_database() as database_url:
        env = worker_env(database_url, prefix, F8A_JOBS_PREFETCH="50")
        worker, *others = [start_worker(env, log_dir) for _ in range(args.replicas)]
        driver = Driver()
        try:
            wait_ready(driver, commands)
            created = {"handler": "noop", "job_id": "profile-get", "periodically": "1 day"}
            driver.call(commands, command("job.create", created))
            warm = "running" if args.kind in READS else args.kind
            driver.run(commands, _body(warm, "warm"), 200, args.in_flight)
            spy = None
            raw = log_dir / "profile.txt"
            if args.spy:
                beside = Path(sys.executable).with_name("py-spy")  # the venv's, not on PATH
                found = str(beside) if beside.exists() else shutil.which("py-spy")
                assert found, "py-spy is in the dev extra: make .venv/.dev"
                sampling = SPY_IDLE if args.idle else SPY
                spy = subprocess.Popen(
                    [
                        found,
                        "record",
                        "-p",
                        str(worker.pid),
                        "-o",
                        str(raw),
                        "-f",
                        "raw",
                        *sampling,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            meter = CpuMeter(worker.pid, replica_pids=tuple(other.pid for other in others))
            before = switches(worker.pid)
            with meter.measure():
                result = driver.run(commands, _body(args.kind, "m"), args.count, args.in_flight)
            after = switches(worker.pid)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
            failed = [r for r in result.replies if not json.loads(r).get("ok")]
            assert not failed, failed[0]
            print(f"{args.kind} @{args.in_flight}: {result.rate:.0f}/s over {args.count} commands")
            per = meter.per_command_us(args.count)
            print("CPU per command (us): " + ", ".join(f"{k} {v:.0f}" for k, v in per.items()))
            print(
                f"all processes {sum(per.values()):.0f} us: {os.cpu_count() or 1} cores carry at most"
                f" {meter.ceiling(args.count):.0f}/s"
            )
            print(
                "worker context switches per command: "
                + ", ".join(f"{k} {(after[k] - before[k]) / args.count:.2f}" for k in after)
            )
            if spy is not None:
                print(summary(raw, what="samples" if args.idle else "samples holding the GIL"))
        finally:
            driver.close()
            for each in (worker, *others):
                each.stop()


if __name__ == "__main__":
    main()
