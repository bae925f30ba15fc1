"""Run the benchmarks and print each project metric beside its raw limit, as a table and as JSON.

    python -m bench                      # all but scale, 3 repetitions each (make bench)
    python -m bench --only commands -r 5
    python -m bench --scale 0.1 -r 1     # a quick look (a tenth of the sizes)
    python -m bench --only scale -r 1    # ten million stored jobs (opt-in; bench/scale.py)

Needs PostgreSQL and RabbitMQ on 127.0.0.1 (``F8A_BENCH_POSTGRES_URL`` / ``F8A_BENCH_RABBITMQ_URL`` to
point elsewhere). Worker, echo server and bare scheduler logs go to ``--log-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import dashboard, fanout, firing, latency, roundtrip, scale, selinon
from bench.harness import Row, machine, table

BENCHMARKS: dict[str, Callable[[int, float, Path], list[Row]]] = {
    "commands": roundtrip.run,
    "fanout": fanout.run,
    "firing": firing.run,
    "latency": latency.run,
    "selinon": selinon.run,
    "dashboard": dashboard.run,
    "scale": scale.run,
}
#: run only when named with --only: ten million jobs take minutes to fill and gigabytes of disk
OPT_IN = {"scale"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), default=[])
    parser.add_argument("-r", "--repetitions", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument("--json", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="f8a-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)

    chosen = args.only or [name for name in BENCHMARKS if name not in OPT_IN]
    report: dict[str, object] = {
        "machine": machine(),
        "repetitions": args.repetitions,
        "scale": args.scale,
    }
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    began = time.perf_counter()
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        rows.extend(BENCHMARKS[name](args.repetitions, args.scale, log_dir))
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"{name} done in {seconds[name]:.0f}s", file=sys.stderr, flush=True)
    report["seconds"] = {**seconds, "total": round(time.perf_counter() - began, 1)}
    report["rows"] = [row.to_dict() for row in rows]

    print(table(rows))
    print()
    print(
        "ratio = project median / limit median; medians of the repetitions, [min-max] beside them."
    )
    print(f"logs: {log_dir}")
    print()
    encoded = json.dumps(report, indent=2)
    print(encoded)
    if args.json:
        args.json.write_text(encoded + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
