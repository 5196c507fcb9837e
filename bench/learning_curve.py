"""The learning loop, measured: how fast a bot that starts from a few wordings per answer gets
better from its logs under an admin's review.

    .venv/bin/python bench/learning_curve.py          # CLINC150 under ../shared/data/clinc150
    .venv/bin/python bench/learning_curve.py --train F --test F [--oos F] [--oos-test F] \\
        [--start-k 5] [--questions-per-day 1000] [--reviews-per-day 100] [--days 10] \\
        [--seed 0] [--rate-share 0.2] [--json] [--png F]

Three bots run side by side, each in a process of its own, through the application layer the
Telegram handlers call (bench/learning_loop.py): the same users ask the same questions of two of
them, whose admins decide the same number of review items a day; one takes the review queue as
/review presents it, the other reviews logged questions drawn at random. Those two start from
the same trained starting set (trained once, then copied: the training is seeded). The third is
trained on the whole training file (its out-of-scope rows and --oos too): what the loop could
reach. Every day ends with /retrain behind the promotion gate; the gate was right unless it
promoted a candidate more than a point worse on the test questions, or kept out one more than a
point better. The default data are CLINC150's training and validation splits (the validation
split is the test data here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.learning_loop import (  # noqa: E402
    SLOW_REPLY_MS,
    Day,
    Plan,
    Reviewer,
    Run,
    full_data_figures,
    make_plan,
    run_deployment,
    start_deployment,
)
from model.datasets import QAPair, read_pair_files  # noqa: E402


def deployment(plan: Plan, home: Path, reviewer: Reviewer, seed: int, started: Day) -> Run:
    """One deployment from its started home, in the process this runs in (its own event
    loop)."""
    return asyncio.run(run_deployment(plan, home, reviewer, seed, started=started))


def started_home(plan: Plan, home: Path) -> Day:
    return asyncio.run(start_deployment(plan, home))


def full_data(pairs: list[QAPair], test: list[QAPair], home: Path) -> Day:
    return asyncio.run(full_data_figures(pairs, test, home))


def percent(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def gate_cell(day: Day) -> str:
    if day.promoted is None or day.candidate is None or day.previous is None:
        return "-"
    decision = "promoted" if day.promoted else "kept out"
    difference = 100 * (day.candidate.accuracy - day.previous.accuracy)
    verdict = "right" if day.gate_right else "WRONG"
    return f"{decision} ({difference:+.1f}) {verdict}"


def print_table(queue: Run, random: Run | None, full: Day | None) -> None:
    header = (
        f"{'day':>3} {'in-scope':>8} {'OOS rec':>8} {'labels':>6} {'wordings':>8} "
        f"{'pairs':>6} {'answered':>8} {'gate (test points)':<26} {'random':>8} "
        f"{'rnd OOS':>8} {'train s':>7} {'slow/during':>11}"
    )
    print(header)
    print("-" * len(header))
    random_days = {d.day: d for d in random.days} if random else {}
    for day in queue.days:
        other = random_days.get(day.day)
        live = day.live
        assert live is not None
        answered = f"{100 * day.answered_right / day.asked:5.1f}%" if day.asked else "     -"
        print(
            f"{day.day:>3} {percent(live.in_scope_accuracy):>8} {percent(live.oos_recall):>8} "
            f"{day.labels:>6} {day.wordings_labeled:>8} {day.training_pairs:>6} {answered:>8} "
            f"{gate_cell(day):<26} "
            f"{percent(other.live.in_scope_accuracy if other and other.live else None):>8} "
            f"{percent(other.live.oos_recall if other and other.live else None):>8} "
            f"{day.train_seconds:7.1f} "
            f"{day.slow_replies_during_training:>5}/{day.replies_during_training:<5}"
        )
    if full is not None and full.live is not None:
        print(
            f"full data ({full.training_pairs} pairs): in-scope "
            f"{percent(full.live.in_scope_accuracy)}, out-of-scope recall "
            f"{percent(full.live.oos_recall)} (trained in {full.train_seconds:.0f} s)"
        )


def day_figures(day: Day, other: Day | None) -> dict[str, Any]:
    """One day's figures; other: the random-review bot's same day."""
    live, random_live = day.live, other.live if other else None
    assert live is not None
    return {
        "day": day.day,
        "in_scope_accuracy": live.in_scope_accuracy,
        "oos_recall": live.oos_recall,
        "test_accuracy": live.accuracy,
        "labels": day.labels,
        "wordings_labeled": day.wordings_labeled,
        "training_pairs": day.training_pairs,
        "decisions": dict(day.decisions),
        "asked": day.asked,
        "answered_right": day.answered_right,
        "ratings": day.ratings,
        "choices": day.choices,
        "gate_promoted": day.promoted,
        "gate_right": day.gate_right,
        "gate": day.gate,
        "candidate": asdict(day.candidate) if day.candidate else None,
        "previous": asdict(day.previous) if day.previous else None,
        "ask_seconds": day.ask_seconds,
        "review_seconds": day.review_seconds,
        "train_seconds": day.train_seconds,
        "test_seconds": day.test_seconds,
        "replies_during_training": day.replies_during_training,
        "slow_replies_during_training": day.slow_replies_during_training,
        "max_reply_ms_during_training": day.max_reply_ms_during_training,
        "slow_replies_otherwise": day.slow_replies_otherwise,
        "random_in_scope_accuracy": random_live.in_scope_accuracy if random_live else None,
        "random_oos_recall": random_live.oos_recall if random_live else None,
        "random_labels": other.labels if other else None,
    }


def summary(queue: Run, random: Run | None, full: Day | None) -> dict[str, Any]:
    """start: day 0 (the imported set trained); days: one object per simulated day."""
    random_days = {d.day: d for d in random.days} if random else {}
    start, *days = [day_figures(day, random_days.get(day.day)) for day in queue.days]
    full_live = full.live if full is not None else None
    result = {
        "start": start,
        "days": days,
        "full_data_in_scope_accuracy": full_live.in_scope_accuracy if full_live else None,
        "full_data_oos_recall": full_live.oos_recall if full_live else None,
        "full_data_training_pairs": full.training_pairs if full is not None else None,
    }
    return {**result, "targets": targets(result)}


def targets(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets: the last day within 5 points of the full-data model and 3 points
    above the random-review bot (in-scope accuracy); out-of-scope recall of 60 % from day 1 on;
    the gate wrong at most once in 10 decisions and never promoting a model more than a point
    worse; no reply waiting over 100 ms while a model trained."""
    days = result["days"]
    if not days:
        return {}
    last = days[-1]
    accuracy = last["in_scope_accuracy"]
    full, other = result["full_data_in_scope_accuracy"], last["random_in_scope_accuracy"]
    recalls = [d["oos_recall"] for d in days if d["oos_recall"] is not None]
    decided = [d for d in days if d["gate_right"] is not None]
    wrong = sum(not d["gate_right"] for d in decided)
    promoted = [
        d["candidate"]["accuracy"] - d["previous"]["accuracy"]
        for d in decided
        if d["gate_promoted"]
    ]
    slow = sum(d["slow_replies_during_training"] for d in days)
    slow_otherwise = sum(d["slow_replies_otherwise"] for d in days)
    asked = sum(d["asked"] for d in days)
    during = sum(d["replies_during_training"] for d in days)
    return {
        "points_below_full_data": None if full is None else 100 * (full - accuracy),
        "points_above_random": None if other is None else 100 * (accuracy - other),
        "lowest_oos_recall": min(recalls) if recalls else None,
        "gate_wrong": wrong,
        "gate_decisions": len(decided),
        "worst_promoted_points": 100 * min(promoted) if promoted else None,
        "slow_replies_during_training": slow,
        "replies_during_training": during,
        "slow_replies_otherwise": slow_otherwise,
        "replies_otherwise": asked - during,
    }


def print_targets(found: dict[str, Any]) -> None:
    def check(ok: bool | None) -> str:
        return "n/a" if ok is None else "met" if ok else "NOT met"

    def points(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f} points"

    below, above = found["points_below_full_data"], found["points_above_random"]
    recall, worst = found["lowest_oos_recall"], found["worst_promoted_points"]
    print("\ntargets:")
    print(
        f"  last day within 5 points of the full-data model: {points(below and -below)} "
        f"({check(None if below is None else below <= 5)})"
    )
    print(
        f"  3 points above the random-review bot: {points(above)} "
        f"({check(None if above is None else above >= 3)})"
    )
    print(
        f"  out-of-scope recall >= 60 % from day 1: lowest {percent(recall).strip()} "
        f"({check(None if recall is None else recall >= 0.6)})"
    )
    wrong, decisions = found["gate_wrong"], found["gate_decisions"]
    print(
        f"  gate wrong at most 1 in 10: {wrong} of {decisions} "
        f"({check(wrong * 10 <= max(decisions, 10))}); worst promoted candidate "
        f"{points(worst)} ({check(None if worst is None else worst >= -1)})"
    )
    slow, during = found["slow_replies_during_training"], found["replies_during_training"]
    print(
        f"  replies over {SLOW_REPLY_MS:.0f} ms while a model trained: {slow} of {during} "
        f"({check(slow == 0)}); with no training running: {found['slow_replies_otherwise']} "
        f"of {found['replies_otherwise']}"
    )


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = [result["start"], *result["days"]]
    labels = [d["labels"] for d in days]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(labels, [100 * d["in_scope_accuracy"] for d in days], "o-", label="review queue")
    if days[-1]["random_in_scope_accuracy"] is not None:
        ax.plot(
            labels, [100 * d["random_in_scope_accuracy"] for d in days], "s--",
            label="random logged questions",
        )  # fmt: skip
    if all(d["oos_recall"] is not None for d in days):
        ax.plot(labels, [100 * d["oos_recall"] for d in days], "^:", label="out-of-scope recall")
    if result["full_data_in_scope_accuracy"] is not None:
        ax.axhline(
            100 * result["full_data_in_scope_accuracy"], color="grey", linestyle="-.",
            label="full data, in-scope",
        )  # fmt: skip
    ax.set_xlabel("admin decisions (labels)")
    ax.set_ylabel("% of the test questions")
    ax.set_title("In-scope accuracy by admin decisions")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / ".." / "shared" / "data" / "clinc150",
        help="the default data: a folder of train.csv, val.csv, oos_train.csv, oos_val.csv",
    )  # fmt: skip
    parser.add_argument("--train", type=Path, help="Q&A file: the start and the users' pool")
    parser.add_argument("--test", type=Path, help="Q&A file to measure on")
    parser.add_argument("--oos", type=Path, help="out-of-scope questions the users ask too")
    parser.add_argument("--oos-test", type=Path, help="out-of-scope questions to measure on")
    parser.add_argument("--start-k", type=int, default=5, help="wordings per answer to start")
    parser.add_argument("--questions-per-day", type=int, default=1000)
    parser.add_argument("--reviews-per-day", type=int, default=100)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--rate-share", type=float, default=0.2, help="share of users who rate every answer"
    )
    parser.add_argument("--png", type=Path, default=ROOT / "bench" / "out" / "learning_curve.png")
    parser.add_argument("--no-random", action="store_true", help="skip the random-review bot")
    parser.add_argument("--no-full", action="store_true", help="skip the full-data model")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args(argv)
    if args.train is None:
        if args.test is not None:
            parser.error("--test needs --train")
        args.train, args.test = args.data_dir / "train.csv", args.data_dir / "val.csv"
        args.oos = args.oos or args.data_dir / "oos_train.csv"
        args.oos_test = args.oos_test or args.data_dir / "oos_val.csv"
    elif args.test is None:
        parser.error("--train needs --test")
    train = read_pair_files([args.train], [args.oos] if args.oos else [])
    test = read_pair_files([args.test], [args.oos_test] if args.oos_test else [])
    plan = make_plan(
        train, test, start_k=args.start_k, questions_per_day=args.questions_per_day,
        reviews_per_day=args.reviews_per_day, days=args.days, seed=args.seed,
        rate_share=args.rate_share,
    )  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="learning-curve-") as work_dir:
        work = Path(work_dir)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(3, mp_context=spawn) as pool:
            full_run = None if args.no_full else pool.submit(full_data, train, test, work / "full")
            # Both bots start from the same starting set, trained the same way (seeded): it is
            # trained once, and the random-review bot starts from a copy of that home.
            day_zero = pool.submit(started_home, plan, work / "queue").result()
            if not args.no_random:
                shutil.copytree(work / "queue", work / "random")
            queue_run = pool.submit(deployment, plan, work / "queue", "queue", args.seed, day_zero)
            random_run = (
                None if args.no_random
                else pool.submit(deployment, plan, work / "random", "random", args.seed, day_zero)
            )  # fmt: skip
            queue = queue_run.result()
            random = random_run.result() if random_run else None
            full = full_run.result() if full_run else None
    elapsed = time.perf_counter() - started
    result = summary(queue, random, full)
    print(
        f"Learning curve: {args.train.name} starting from {args.start_k} wordings per answer, "
        f"{args.questions_per_day} questions and {args.reviews_per_day} reviews a day; test "
        f"{args.test.name}" + (f" + {args.oos_test.name}" if args.oos_test else "")
    )
    print(
        "in-scope/OOS rec: the live model after the day's /retrain; labels: admin decisions so "
        "far (wordings: pairs they added); answered: the day's questions answered right; gate: "
        "its decision (candidate minus live model, test points); random: the bot whose admin "
        "reviews random logged questions; slow/during: replies over 100 ms / replies while a "
        "retraining ran.\n"
    )
    print_table(queue, random, full)
    print_targets(result["targets"])
    plot(result, args.png)
    print(
        f"\ncurves: {args.png}; seed {args.seed}; {elapsed:.0f} s; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    if args.json:
        print(json.dumps({**result, "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
