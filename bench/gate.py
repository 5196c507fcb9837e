"""The promotion gate on constructed retrains: what it decides, whether that was right on test
data, and how long a retraining takes.

    .venv/bin/python bench/gate.py [--train F] [--test F] [--oos-test F] [--base-k 10]
        [--cases noise more fewer mislabelled] [--seed 0] [--json]

A live model is trained through the application (App.models.retrain, as /retrain does) on
`--base-k` wordings per answer of the training file. Each case then starts from that live model
in a home of its own, with another training set, and retrains once:

- noise: the same pairs, another seed (the gate should let it through);
- more: 3 more wordings per answer (better);
- fewer: half the wordings of each answer (worse);
- mislabelled: a fifth of the pairs moved to a wrong answer (worse).

Both served models are then scored on the test files (in-scope questions must get their answer,
out-of-scope ones the fallback); the gate was wrong when it promoted a candidate more than a
point worse on them, or blocked one more than a point better (within a point either is right).
By default CLINC150 from ../shared/data/clinc150 (train.csv; val.csv and oos_val.csv as test
files).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app.app import App  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage.store import Store, upgrade_database  # noqa: E402
from model.datasets import QAPair, answer_key, read_pair_files  # noqa: E402
from model.predictor import AnswerModel  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "clinc150"
CASES = ("noise", "more", "fewer", "mislabelled")
# Within this difference on the test data (share of right replies) either decision is right.
TOLERANCE = 0.01


@dataclass
class Case:
    name: str
    n_pairs: int
    promoted: bool
    gate: str  # the gate's verdict and figures in a few words
    candidate_test: float  # share of right replies on the test files
    live_test: float
    seconds: float  # the retraining's wall time, gate included

    @property
    def right(self) -> bool:
        """As bench/learning_curve.py judges the gate: wrong when it promoted a candidate more
        than a point worse on the test data, or blocked one more than a point better."""
        difference = self.candidate_test - self.live_test
        return difference >= -TOLERANCE if self.promoted else difference <= TOLERANCE


def by_answer(pairs: list[QAPair]) -> dict[str, list[QAPair]]:
    grouped: dict[str, list[QAPair]] = defaultdict(list)
    for pair in pairs:
        if not pair.out_of_scope:
            grouped[pair.answer].append(pair)
    return grouped


def case_pairs(name: str, pool: dict[str, list[QAPair]], base_k: int, seed: int) -> list[QAPair]:
    """The training set of a case, from each answer's shuffled wordings."""
    rng = random.Random(seed)
    if name in ("noise", "base"):
        return [p for rows in pool.values() for p in rows[:base_k]]
    if name == "more":
        return [p for rows in pool.values() for p in rows[: base_k + 3]]
    if name == "fewer":
        return [p for rows in pool.values() for p in rows[: max(2, base_k // 2)]]
    if name == "mislabelled":
        answers = sorted(pool)
        pairs = [p for rows in pool.values() for p in rows[:base_k]]
        for i in rng.sample(range(len(pairs)), len(pairs) // 5):
            wrong = rng.choice([a for a in answers if a != pairs[i].answer])
            pairs[i] = QAPair(pairs[i].question, wrong)
        return pairs
    raise ValueError(f"unknown case {name!r}")


def test_score(model: AnswerModel, test: list[QAPair]) -> float:
    """Share of right replies: the answer for in-scope questions, the fallback for the others."""
    predictions = model.predict_batch([p.question for p in test])
    right = sum(
        prediction.fallback
        if pair.out_of_scope
        else prediction.answer_id == answer_key(pair.answer)
        for pair, prediction in zip(test, predictions, strict=True)
    )
    return right / len(test)


def gate_words(outcome: Any) -> str:
    comparison = getattr(outcome, "comparison", None)
    if comparison is None:  # also the gate of older code, which kept no comparison
        live = outcome.live
        shown = "-" if live is None else f"{outcome.candidate['score']:.1%} vs {live['score']:.1%}"
        return f"{shown} on {outcome.candidate.get('n', 0)}"
    return (
        f"{comparison.verdict}: {outcome.candidate['score']:.1%} vs {outcome.live['score']:.1%} "
        f"on {comparison.n}, +{comparison.candidate_only}/-{comparison.live_only}, "
        f"p_worse {comparison.p_worse:.3g}"
    )


async def retrain_in(home: Path, pairs: list[QAPair], seed: int) -> tuple[Any, App, Store]:
    settings = Settings(
        QABOT_HOME=home, QABOT_MODEL_PROCESS="0", QABOT_SEED=str(seed), _env_file=None
    )
    home.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(upgrade_database, settings.database_url)
    store = Store(settings.database_url)
    await store.add_pairs(pairs, source="imported")
    app = App(settings, store)
    await app.start()
    return await app.models.retrain(), app, store


async def run(args: argparse.Namespace) -> tuple[float, list[Case]]:
    train = read_pair_files([args.train], [])
    test = read_pair_files([args.test], [args.oos_test] if args.oos_test else [])
    pool = by_answer(train)
    rng = random.Random(args.seed)
    for rows in pool.values():
        rng.shuffle(rows)
    with tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp:
        base_home = Path(tmp) / "base"
        started = time.perf_counter()
        _, app, store = await retrain_in(base_home, case_pairs("base", pool, args.base_k, 0), 0)
        base_seconds = time.perf_counter() - started
        live_model = app.models.current
        assert live_model is not None
        live_test = test_score(live_model, test)
        await app.stop()
        await store.close()
        cases = []
        for name in args.cases:
            home = Path(tmp) / name
            shutil.copytree(base_home / "models", home / "models")
            pairs = case_pairs(name, pool, args.base_k, args.seed)
            seed = 1 if name == "noise" else 0
            started = time.perf_counter()
            outcome, app, store = await retrain_in(home, pairs, seed)
            seconds = time.perf_counter() - started
            candidate = await asyncio.to_thread(AnswerModel.load, outcome.trained.path)
            cases.append(
                Case(
                    name,
                    len(pairs),
                    outcome.promoted,
                    gate_words(outcome),
                    test_score(candidate, test),
                    live_test,
                    round(seconds, 1),
                )
            )
            print(f"{name}: {cases[-1]}", file=sys.stderr)
            await app.stop()
            await store.close()
            shutil.rmtree(home)
    return base_seconds, cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=DATA / "train.csv")
    parser.add_argument("--test", type=Path, default=DATA / "val.csv")
    parser.add_argument("--oos-test", type=Path, default=DATA / "oos_val.csv")
    parser.add_argument("--base-k", type=int, default=10)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    base_seconds, cases = asyncio.run(run(args))
    if args.json:
        rows = [{**asdict(c), "right": c.right} for c in cases]
        print(json.dumps({"base_seconds": round(base_seconds, 1), "cases": rows}))
        return 0
    print(f"first model: {base_seconds:.1f} s (the machine is shared: wall times vary)")
    print(f"{'case':<12} {'pairs':>6} {'test cand/live':>15} {'gate':<58} {'decision':<9} right  s")
    for c in cases:
        decision = "promoted" if c.promoted else "blocked"
        tests = f"{c.candidate_test:.1%}/{c.live_test:.1%}"
        print(
            f"{c.name:<12} {c.n_pairs:>6} {tests:>15} {c.gate:<58} {decision:<9} "
            f"{'yes' if c.right else 'NO':<5} {c.seconds:.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
