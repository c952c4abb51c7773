"""`make bench` / `python -m bench`: every hot path against its floor, one table, results/latest.json.

    .venv/bin/python -m bench                       # default sizes (< 10 minutes on 2 cores)
    .venv/bin/python -m bench --quick               # tiny sizes (the smoke test)
    .venv/bin/python -m bench --only P1,P3 --p3-requests 500 --p5-sizes 1000,10000,100000

Order: P1 (fresh interpreters) and P6 (a synthesis) first, then one in-process local stack
(pollers off) for P2, Cost, P3, P4 and P5. Handlers' stdout (EMF metric lines) is discarded while
measuring; the table goes to stdout, progress to stderr. Exit 0 unless a figure failed to run
(``--strict``: also 1 when any target is missed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import MISS, FigureResult, RequestCounter, Row

FIGURES = ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "ROLLUP", "COST")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: proves every figure produces numbers")
    p.add_argument("--only", default="", help="comma-separated figures: P1,P2,P3,P4,P5,P6,P7,Rollup,Cost")
    p.add_argument("--p1-runs", type=int, default=None, help="fresh interpreters per module (default 10)")
    p.add_argument("--p3-requests", type=int, default=None, help="requests per side (default 300)")
    p.add_argument("--p4-pool", type=int, default=None, help="pool size (default 256)")
    p.add_argument("--p4-leases", type=int, default=None, help="new sessions per level (default 128)")
    p.add_argument("--p4-concurrency", type=int, default=64, help="concurrent sessions (default 64)")
    p.add_argument(
        "--p4-unserialised",
        action="store_true",
        help="do not serialise the emulator's DynamoDB requests (moto's conditional writes are not atomic)",
    )
    p.add_argument(
        "--p4-model-ms",
        type=float,
        default=5.0,
        help="round trip per request of the P4 model rows (in-memory store; default 5 ms)",
    )
    p.add_argument(
        "--p4-poisson-rate", type=float, default=20.0, help="Poisson lease arrivals per second (default 20)"
    )
    p.add_argument(
        "--p7-visitors", default=None, help="daily visitors per P7 level (default 1000,5000,20000)"
    )
    p.add_argument("--p5-sizes", default=None, help="calls per month, e.g. 1000,10000,100000")
    p.add_argument("--cost-calls", type=int, default=None, help="whole calls measured (default 20)")
    p.add_argument("--out", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    p.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    args = p.parse_args(argv)
    quick = args.quick
    args.p1_runs = args.p1_runs or (1 if quick else 10)
    args.p3_requests = args.p3_requests or (10 if quick else 300)
    args.p4_pool = args.p4_pool or (16 if quick else 256)
    args.p4_leases = args.p4_leases or (16 if quick else 128)
    if quick:
        args.p4_concurrency = min(args.p4_concurrency, 8)
    visitors = args.p7_visitors or ("300,1000" if quick else "1000,5000,20000")
    args.p7_visitors = tuple(int(s) for s in visitors.split(",") if s.strip())
    sizes = args.p5_sizes or ("100,1000" if quick else "1000,10000,100000")
    args.p5_sizes = tuple(int(s) for s in sizes.split(",") if s.strip())
    args.cost_calls = args.cost_calls or (2 if quick else 20)
    only = {s.strip().upper() for s in args.only.split(",") if s.strip()}
    unknown = only - set(FIGURES)
    if unknown:
        p.error(f"--only: unknown figure(s) {', '.join(sorted(unknown))}; known: {', '.join(FIGURES)}")
    args.figures = [f for f in FIGURES if not only or f in only]
    return args


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Discard what handlers print (EMF lines) at the file-descriptor level too."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            with contextlib.redirect_stdout(devnull):
                yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def _guard(name: str, title: str, fn: Callable[[], FigureResult], log: Callable[[str], None]) -> FigureResult:
    log(f"[bench] {name}: {title} ...")
    started = time.perf_counter()
    try:
        with quiet_stdout():
            result = fn()
    except Exception as exc:  # a broken figure is reported, the others still run
        result = FigureResult(name, title)
        message = f"{type(exc).__name__}: {exc}"[:200]
        result.rows.append(Row(f"{name} failed to run", message, "", None, "ERROR"))
        result.details = {"traceback": traceback.format_exc()}
    result.seconds = time.perf_counter() - started
    log(f"[bench] {name}: done in {result.seconds:.0f} s")
    return result


def run(args: argparse.Namespace, log: Callable[[str], None]) -> list[FigureResult]:
    results: list[FigureResult] = []
    want = set(args.figures)
    if "P1" in want:
        from bench import p1_cold_start

        # --quick (the smoke test) times the voice webhook against the floor and two more handlers,
        # not all of them: each import is a fresh interpreter (~1.5 s), 45 s for every handler
        p1_modules = p1_cold_start.handler_modules()[:3] if args.quick else None
        results.append(_guard("P1", "cold start", lambda: p1_cold_start.run(args.p1_runs, p1_modules), log))
    if "P6" in want:
        from bench import p6_size

        results.append(_guard("P6", "asset sizes", p6_size.run, log))
    if "P7" in want:
        from bench import p7_pool_efficiency

        results.append(
            _guard("P7", "pool efficiency",
                   lambda: p7_pool_efficiency.run(args.p7_visitors, days=2 if args.quick else 10), log)
        )
    if "ROLLUP" in want:
        from bench import rollup_cost

        results.append(_guard("Rollup", "rollup write cost", lambda: rollup_cost.run(quick=args.quick), log))
    if want & {"P2", "P3", "P4", "P5", "COST"}:
        from bench import cost, p2_round_trips, p3_warm_latency, p4_dni, p5_reports
        from bench.stack import bench_stack

        with quiet_stdout(), bench_stack() as client, RequestCounter(client.stack.invoker) as counter:
            steps: list[tuple[str, str, Callable[[], FigureResult]]] = [
                ("P2", "round trips", lambda: p2_round_trips.run(client, counter)),
                ("COST", "cost per 1,000 calls", lambda: cost.run(client, counter, args.cost_calls)),
                ("P3", "warm latency", lambda: p3_warm_latency.run(client, args.p3_requests)),
                (
                    "P4",
                    "DNI leases",
                    lambda: p4_dni.run(
                        pool_size=args.p4_pool,
                        leases=args.p4_leases,
                        concurrency=args.p4_concurrency,
                        atomic=not args.p4_unserialised,
                        model_round_trip_ms=args.p4_model_ms,
                        poisson_rate=args.p4_poisson_rate,
                        counter=counter,
                    ),
                ),
                ("P5", "channel report", lambda: p5_reports.run(client, counter, args.p5_sizes)),
            ]
            for name, title, fn in steps:
                if name in want:
                    results.append(_guard(name, title, fn, log))
    _beside_the_call(results)
    order = {name: i for i, name in enumerate(FIGURES)}
    results.sort(key=lambda r: order.get(r.name.upper(), 99))
    return results


def _beside_the_call(results: list[FigureResult]) -> None:
    """Add to the Cost figure Twilio's part (number rental at P7's pool sizes, minutes, recording)
    and, for website calls, the DNI lease requests of P7's visitors (``bench.dni_cost``)."""
    from bench import dni_cost, twilio_cost
    from infra.wiring import WIRING

    by_name = {r.name.upper(): r for r in results}
    cost = by_name.get("COST")
    if cost is None:
        return
    p7 = by_name.get("P7")
    levels = (p7.details.get("levels") if p7 else None) or {}
    pools: dict[int, dict[str, Any]] = {}
    dni: dict[int, dict[str, Any]] = {}
    share = twilio_cost.prices()["calls_per_1000_visitors"]["calls"]
    for visitors, level in levels.items():
        chosen = level["policies"].get(p7.details["chosen_policy"], {}) if p7 else {}
        if chosen.get("at_smallest"):
            dni[int(visitors)] = dni_cost.per_1000_calls(
                chosen["at_smallest"], int(visitors), share, WIRING.function("dni_lease").memory_mb
            )
        pools[int(visitors)] = {"p7": chosen.get("smallest_pool_at_99"), "rule": level["rule_pool"],
                                "dni": (dni.get(int(visitors)) or {}).get("total_per_1000_calls_usd")}
    if not pools:
        pools = {v: {"p7": None, "rule": -(-v // 20)} for v in (1000, 5000, 20000)}
    if dni:
        rows, details = dni_cost.rows(dni)
        cost.rows.extend(rows)
        cost.details["dni"] = details
        cost.notes.append(details["note"])
    total = cost.details.get("total_per_1000_calls_usd")
    rows, details = twilio_cost.rows(total, pools)
    cost.rows.extend(rows)
    cost.details["twilio"] = details
    cost.notes.append(details["note"])


def render(results: list[FigureResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="calltrack bench", show_lines=False)
    for col in ("figure", "measured", "floor / target", "ratio", "result"):
        table.add_column(col, overflow="fold")
    colours = {"PASS": "green", "MISS": "bold red", "ERROR": "bold red", "INFO": "dim"}
    for result in results:
        for row in result.rows:
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}"
            status = f"[{colours.get(row.status, '')}]{row.status}[/]"
            table.add_row(row.figure, row.measured, row.target, ratio, status)
    console = Console(width=max(140, Console().width))
    console.print(table)
    for result in results:
        for note in result.notes:
            console.print(f"[dim]{result.name}: {note}[/]", highlight=False)


def write_json(results: list[FigureResult], args: argparse.Namespace, path: Path, elapsed: float) -> None:
    payload: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": round(elapsed, 1),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "args": {
            k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
        },
        "summary": [row.as_dict() for r in results for row in r.rows],
        "figures": [r.as_dict() for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from calltrack_cli.source import use_checkout

    use_checkout()  # the function packages (functions/<folder>) and infra, as the local runtime does

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    results = run(args, log)
    elapsed = time.perf_counter() - started
    render(results)
    write_json(results, args, args.out, elapsed)
    log(f"[bench] {elapsed:.0f} s; results in {args.out}")
    statuses = {row.status for r in results for row in r.rows}
    if "ERROR" in statuses:
        return 1
    return 1 if args.strict and MISS in statuses else 0


if __name__ == "__main__":
    raise SystemExit(main())
