"""How long `qabot --help` and each subcommand's `--help` take, from process start to exit.

    .venv/bin/python bench/help.py [--runs N] [--json]

Each command runs N times in a fresh interpreter (`python -m bot.cli ... --help`); the table
shows the median and the slowest run, and how long `python -c pass` takes for comparison.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [[], ["run"], ["chat"], ["train"], ["eval"], ["export"], ["import"], ["review"]]


def seconds(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(argv: list[str], runs: int) -> dict[str, float]:
    timings = [seconds(argv) for _ in range(runs)]
    return {"median_s": round(statistics.median(timings), 3), "max_s": round(max(timings), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {"python -c pass": measure([sys.executable, "-c", "pass"], args.runs)}
    for command in COMMANDS:
        name = " ".join(["qabot", *command, "--help"])
        results[name] = measure([sys.executable, "-m", "bot.cli", *command, "--help"], args.runs)
    if args.json:
        print(json.dumps(results))
        return
    print(f"{'command':<28} {'median s':>9} {'max s':>7}   ({args.runs} runs each)")
    for name, figures in results.items():
        print(f"{name:<28} {figures['median_s']:>9.3f} {figures['max_s']:>7.3f}")


if __name__ == "__main__":
    main()
