"""Start-up cost: `omnizap --version` and importing the web app, each in a fresh interpreter.

    python -m bench.startup [--runs 15] [--omnizap PATH]

Runs `omnizap --version` and `python -c "import omnizap.web.app"` `--runs` times each, one after the
other, and prints wall-clock and CPU (user+system) time per run: median and best. CPU time is what
the process itself cost; wall-clock time also counts waiting for a busy CPU, so compare runs on an
idle machine (the load average is printed with the results).

Targets: `omnizap --version` ≤ 0.3 s, web app import ≤ 1.5 s (wall clock, median, idle machine).
The app import is what each `omnizap serve` HTTP worker does before it can serve.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGETS_SECONDS = {"omnizap --version": 0.3, "import omnizap.web.app": 1.5}


def _omnizap_command(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    found = shutil.which("omnizap", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "omnizap.cli.main"]


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: list[str], runs: int) -> dict[str, float]:
    """Median and best wall-clock and CPU seconds of `runs` runs of argv (each must exit 0)."""
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(runs):
        cpu_before = _children_cpu_seconds()
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - started)
        cpus.append(_children_cpu_seconds() - cpu_before)
    return {
        "wall_median_s": round(statistics.median(walls), 3),
        "wall_best_s": round(min(walls), 3),
        "cpu_median_s": round(statistics.median(cpus), 3),
        "cpu_best_s": round(min(cpus), 3),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="runs of each command")
    parser.add_argument("--omnizap", default=None, help="the omnizap executable [default: next to python]")
    args = parser.parse_args(argv)

    commands = {
        "omnizap --version": [*_omnizap_command(args.omnizap), "--version"],
        "import omnizap.web.app": [sys.executable, "-c", "import omnizap.web.app"],
    }
    results: dict[str, object] = {"runs": args.runs, "load_average_before": os.getloadavg()}
    for name, command in commands.items():
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # warm the file cache
        figures = time_command(command, args.runs)
        target = TARGETS_SECONDS[name]
        results[name] = {**figures, "target_s": target, "met": figures["wall_median_s"] <= target}
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
