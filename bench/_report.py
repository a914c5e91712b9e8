"""Common reporting for the benchmarks: each figure beside its baseline measured in the same run.

A benchmark builds a ``Report``, adds ``Figure`` rows and calls ``finish()``: the rows are printed as a
table and, when ``PRIORGATE_BENCH_OUT`` names a file (``make bench`` sets it), appended to it as one JSON
line. ``python bench/_report.py`` (``make bench``) runs every ``bench/*.py`` once, in order, and writes
``bench/results.json`` and ``bench/results.md`` from those lines.

The ratio is always ``value / baseline`` in the figure's unit: for a rate (``/s``) a ratio under 1 is
the share of the baseline's throughput PriorGate keeps; for a time (``ms``) it is how many times longer
PriorGate takes than the baseline.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT_ENV = "PRIORGATE_BENCH_OUT"
RESULTS_JSON = BENCH / "results.json"
RESULTS_MD = BENCH / "results.md"
PER_BENCH_LIMIT_S = 300.0  # a stuck benchmark fails the run instead of hanging it


@dataclass(frozen=True)
class Figure:
    """One measured figure and its baseline, in the same unit (``/s`` or ``ms``)."""

    name: str
    unit: str
    value: float
    baseline: str
    baseline_value: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    baseline_p50_ms: float | None = None
    baseline_p99_ms: float | None = None
    errors: int = 0

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else float("nan")


@dataclass
class Report:
    bench: str
    setup: str
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def note(self, text: str) -> None:
        self.notes.append(text)

    def as_json(self) -> dict[str, Any]:
        rows = [asdict(f) | {"ratio": round(f.ratio, 4)} for f in self.figures]
        return {"bench": self.bench, "setup": self.setup, "figures": rows, "notes": self.notes}

    def finish(self) -> None:
        """Print the table; append the JSON line for the runner when it asked for one."""
        print(f"{self.bench}: {self.setup}")
        print(markdown_table([self.as_json()]))
        for text in self.notes:
            print(f"  note: {text}")
        out = os.environ.get(OUT_ENV)
        if out:
            with open(out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(self.as_json()) + "\n")


def percentiles(samples_s: Sequence[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds of latencies in seconds (nearest rank)."""
    ordered = sorted(samples_s)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) * 1000, p99 * 1000


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "/s" or value >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def markdown_table(benches: Sequence[dict[str, Any]]) -> str:
    head = (
        "| bench | figure | value | baseline | baseline value | ratio | p50 ms | p99 ms "
        "| baseline p50 ms | baseline p99 ms | errors |"
    )
    lines = [head, "|" + "---|" * 11]
    for bench in benches:
        for f in bench["figures"]:
            unit = f["unit"]
            lines.append(
                f"| {bench['bench']} | {f['name']} | {_num(f['value'], unit)} {unit} | {f['baseline']} "
                f"| {_num(f['baseline_value'], unit)} {unit} | {f['ratio']:.2f} | {_num(f['p50_ms'])} "
                f"| {_num(f['p99_ms'])} | {_num(f['baseline_p50_ms'])} | {_num(f['baseline_p99_ms'])} "
                f"| {f['errors']} |"
            )
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_all(names: Sequence[str] = ()) -> int:
    """Run each benchmark once (all of ``bench/*.py`` but the ``_`` modules, or the ``names`` given)."""
    scripts = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))
    if names:
        scripts = [p for p in scripts if p.stem in names]
    benches: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    failed = False
    with tempfile.TemporaryDirectory(prefix="priorgate-bench-") as tmp:
        out = Path(tmp) / "figures.jsonl"
        for script in scripts:
            print(f"== {script.name}", flush=True)
            start = time.monotonic()
            env = {**os.environ, OUT_ENV: str(out)}
            try:
                code = subprocess.run(
                    [sys.executable, str(script)], cwd=ROOT, env=env, timeout=PER_BENCH_LIMIT_S
                )
                status = code.returncode
            except subprocess.TimeoutExpired:
                status = -1
            runs.append({"bench": script.stem, "exit": status, "seconds": round(time.monotonic() - start, 1)})
            failed = failed or status != 0
        if out.exists():
            benches = [json.loads(line) for line in out.read_text("utf-8").splitlines() if line]
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "runs": runs,
        "benches": benches,
    }
    RESULTS_JSON.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    setups = "\n".join(f"- **{b['bench']}**: {b['setup']}" for b in benches)
    notes = "\n".join(f"- {b['bench']}: {n}" for b in benches for n in b["notes"])
    ran = ", ".join(f"{r['bench']} {r['seconds']} s (exit {r['exit']})" for r in runs)
    RESULTS_MD.write_text(
        f"# Benchmark results\n\n{document['when']}, commit {document['commit']}, Python "
        f"{document['python']}, {document['machine']}.\n\nRuns: {ran}.\n\n{setups}\n\n"
        f"{markdown_table(benches)}\n" + (f"\n{notes}\n" if notes else ""),
        "utf-8",
    )
    print(f"wrote {RESULTS_JSON.relative_to(ROOT)} and {RESULTS_MD.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run_all(sys.argv[1:]))
