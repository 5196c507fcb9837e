"""Open-set cold start: a new FAQ with a few wordings per answer, met by questions it was never
taught. This model beside a TF-IDF + logistic regression reference trained on the same file.

    .venv/bin/python bench/cold_start.py [--k 5 10] [--seed 0] [--json]
    .venv/bin/python bench/cold_start.py --train T.csv --val V.csv [--oos-train F] \\
        [--oos-val F] --unknown N [--name NAME]

For each data set (by default CLINC150 with 30 of its 150 answers unknown, and MASSIVE zh-CN
with 12 of its 60): the unknown answers are drawn (seeded); from each known answer k training
questions are drawn; that file alone goes to `qabot train` (no out-of-scope rows, no validation
split). Evaluation (`qabot eval`) is on the validation questions: those of the known answers are
in scope, those of the unknown answers plus the out-of-scope validation file must fall back.
The reference is trained on the same file; it is shown at its own rule (chosen like this
model's, for 70 % out-of-scope recall on the evaluation questions themselves: an advantage) and
at the rule giving this model's recall; its curves go to `--out`. The full-data rows train on
all training questions (and out-of-scope ones) with the validation split given, as
bench/clinc150.py does. Only validation splits are read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.clinc150 import Row, bench_reference, curve, labels_for, plot  # noqa: E402
from model.datasets import QAPair, answer_key, read_pair_files, write_pairs_csv  # noqa: E402
from model.registry import ModelRegistry  # noqa: E402
from model.train import TrainConfig  # noqa: E402


@dataclass(frozen=True)
class DataSet:
    name: str
    train: Path
    val: Path
    oos_train: Path | None
    oos_val: Path | None
    unknown: int


def default_sets(data: Path) -> list[DataSet]:
    """CLINC150 (30 of 150 answers unknown) and MASSIVE zh-CN (12 of 60) under data."""
    clinc, massive = data / "clinc150", data / "massive_zh"
    return [
        DataSet("CLINC150 (English)", clinc / "train.csv", clinc / "val.csv",
                clinc / "oos_train.csv", clinc / "oos_val.csv", 30),
        DataSet("MASSIVE zh-CN (Chinese)", massive / "train.csv", massive / "val.csv",
                None, None, 12),
    ]  # fmt: skip


@dataclass
class Result:
    data: str
    setting: str
    n_train: int
    n_in_scope: int
    n_oos: int
    this_model: Row
    reference: Row
    reference_at_same_recall: Row
    threshold: float
    margin: float
    validation: str

    @property
    def gain(self) -> float:
        return self.this_model.in_scope_accuracy - self.reference_at_same_recall.in_scope_accuracy


def cold_start_split(
    train: list[QAPair], val: list[QAPair], oos_val: list[QAPair], unknown: int, k: int, seed: int
) -> tuple[list[QAPair], list[QAPair], set[str]]:
    """(k training questions of each known answer, evaluation pairs, unknown answers): the
    validation questions of unknown answers become out-of-scope, as do those of oos_val."""
    rng = np.random.default_rng(seed)
    answers = sorted({p.answer for p in train})
    unknown_answers = {answers[i] for i in rng.choice(len(answers), unknown, replace=False)}
    by_answer: dict[str, list[QAPair]] = {}
    for pair in train:
        if pair.answer not in unknown_answers:
            by_answer.setdefault(pair.answer, []).append(pair)
    # Draws per answer from their own generator: k = 5 takes the first 5 of the k = 10 draw.
    chosen = []
    for answer in sorted(by_answer):
        pairs = by_answer[answer]
        order = np.random.default_rng([seed, len(pairs), len(answer)]).permutation(len(pairs))
        chosen += [pairs[i] for i in order[:k]]
    evaluation = [
        QAPair(p.question, "" if p.answer in unknown_answers else p.answer) for p in val
    ] + [QAPair(p.question, "") for p in oos_val]
    return chosen, evaluation, unknown_answers


def run_qabot(args: list[str], home: Path) -> str:
    """`python -m bot.cli ARGS` as a user runs it; its standard output."""
    env = {**os.environ, "QABOT_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"qabot {args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def this_model(
    train_files: list[str], evaluation: list[QAPair], work: Path, label: str
) -> tuple[Row, np.ndarray, dict]:
    """Train with `qabot train`, evaluate with `qabot eval`; (row, curve, training metrics)."""
    models = work / "models"
    in_scope, oos = work / "eval_in_scope.csv", work / "eval_oos.csv"
    write_pairs_csv([p for p in evaluation if not p.out_of_scope], in_scope)
    write_pairs_csv([p for p in evaluation if p.out_of_scope], oos)
    print(f"{label}: qabot train ...", file=sys.stderr)
    lines = run_qabot(["train", *train_files, "--model-dir", str(models), "--progress-json"], work)
    done = next(e for e in map(json.loads, lines.splitlines()) if e["event"] == "done")
    print(f"{label}: qabot eval ...", file=sys.stderr)
    figures = json.loads(
        run_qabot(
            [
                "eval",
                "--data",
                str(in_scope),
                "--oos",
                str(oos),
                "--model-dir",
                str(models),
                "--json",
            ],
            work,
        )  # fmt: skip
    )
    model = ModelRegistry(models).load_current()
    assert model is not None
    labels = labels_for(evaluation, model.classes, answer_key)
    gate, probs = model.gate_and_answer_probabilities([p.question for p in evaluation])
    row = Row(
        name="this model",
        in_scope_accuracy=figures["in_scope_accuracy"],
        # None without out-of-scope questions to evaluate on (MASSIVE's full data).
        oos_recall=float("nan") if figures["oos_recall"] is None else figures["oos_recall"],
        train_seconds=done["metrics"]["train_seconds"],
        p50_ms=figures["latency_ms"]["p50"],
        p99_ms=figures["latency_ms"]["p99"],
    )
    return row, curve(probs, labels, model.oos_class, gate), done["metrics"]


def compare(
    name: str,
    setting: str,
    train_pairs: list[QAPair],
    evaluation: list[QAPair],
    work: Path,
    out: Path,
    train_args: list[str] | None = None,
) -> Result:
    """This model and the reference on one training file, evaluated on the same questions."""
    work.mkdir(parents=True)
    data = work / "train.csv"
    write_pairs_csv(train_pairs, data)
    label = f"{name}, {setting}"
    ours, our_curve, metrics = this_model(
        train_args or ["--data", str(data)], evaluation, work, label
    )
    print(f"{label}: reference ...", file=sys.stderr)
    our_recall = ours.oos_recall
    assert our_recall is not None  # this_model gives NaN without out-of-scope questions
    reference, matched, reference_curve = bench_reference(
        train_pairs, evaluation, work, TrainConfig().target_oos_recall, our_recall
    )
    slug = "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")
    plot(
        {"this model": our_curve, "TF-IDF + LogisticRegression": reference_curve},
        {
            "this model": (our_recall, ours.in_scope_accuracy),
            "TF-IDF + LogisticRegression": (reference.oos_recall, reference.in_scope_accuracy),
        },
        out / f"cold_start_{slug}.png",
    )
    return Result(
        data=name,
        setting=setting,
        n_train=len(train_pairs),
        n_in_scope=sum(not p.out_of_scope for p in evaluation),
        n_oos=sum(p.out_of_scope for p in evaluation),
        this_model=ours,
        reference=reference,
        reference_at_same_recall=matched,
        threshold=metrics["threshold"],
        margin=metrics["margin"],
        validation=metrics["validation"],
    )


def bench_data_set(
    data: DataSet, ks: list[int], seed: int, work: Path, out: Path, full: bool
) -> list[Result]:
    train = read_pair_files([data.train])
    val = read_pair_files([data.val])
    oos_val = read_pair_files([], [data.oos_val] if data.oos_val else [])
    results = []
    for k in ks:
        train_pairs, evaluation, _ = cold_start_split(train, val, oos_val, data.unknown, k, seed)
        setting = f"k={k}, {data.unknown} unknown"
        results.append(
            compare(data.name, setting, train_pairs, evaluation, work / f"{data.name}-k{k}", out)
        )
    if full:
        oos_train = read_pair_files([], [data.oos_train] if data.oos_train else [])
        files = ["--data", str(data.train), "--val", str(data.val)]
        if data.oos_train:
            files += ["--oos", str(data.oos_train)]
        if data.oos_val:
            files += ["--oos-val", str(data.oos_val)]
        results.append(
            compare(
                data.name,
                "full data, validation given",
                train + oos_train,
                val + oos_val,
                work / f"{data.name}-full",
                out,
                files,
            )  # fmt: skip
        )
    return results


def percent(value: float | None) -> str:
    return "   n/a" if value is None or np.isnan(value) else f"{100 * value:5.1f}%"


def print_table(results: list[Result]) -> None:
    header = (
        f"{'data':<24} {'setting':<28} {'in-scope':>8} {'OOS rec':>8} {'ref@rec':>8} "
        f"{'gain':>6} {'ref own':>15} {'train s':>13} {'p50 ms':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        ours, ref, matched = r.this_model, r.reference, r.reference_at_same_recall
        gain = "   n/a" if np.isnan(r.gain) else f"{100 * r.gain:+6.1f}"
        own = f"{percent(ref.in_scope_accuracy)}/{percent(ref.oos_recall)}"
        seconds = f"{ours.train_seconds:5.1f}/{ref.train_seconds:5.1f}"
        print(
            f"{r.data:<24} {r.setting:<28} {percent(ours.in_scope_accuracy):>8} "
            f"{percent(ours.oos_recall):>8} {percent(matched.in_scope_accuracy):>8} {gain:>6} "
            f"{own:>15} {seconds:>13} {ours.p50_ms:6.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / ".." / "shared" / "data",
        help="folder holding clinc150/ and massive_zh/ (the default data sets)",
    )  # fmt: skip
    parser.add_argument("--train", type=Path, help="training Q&A file (instead of the defaults)")
    parser.add_argument("--val", type=Path, help="validation Q&A file of the same answers")
    parser.add_argument("--oos-train", type=Path, help="out-of-scope training questions")
    parser.add_argument("--oos-val", type=Path, help="out-of-scope validation questions")
    parser.add_argument("--unknown", type=int, help="answers held out as unknown")
    parser.add_argument("--name", default="custom", help="name of the data set in the table")
    parser.add_argument(
        "--k", type=int, nargs="*", default=[5, 10],
        help="wordings per answer (none: the full-data rows only)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-full", action="store_true", help="skip the full-data rows")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.train:
        if not args.val or args.unknown is None:
            parser.error("--train needs --val and --unknown")
        sets = [DataSet(args.name, args.train, args.val, args.oos_train, args.oos_val,
                        args.unknown)]  # fmt: skip
    else:
        sets = default_sets(args.data_dir)
        missing = [str(d.train) for d in sets if not d.train.is_file()]
        if missing:
            parser.error(
                f"no data set at {', '.join(missing)}: --data-dir names a folder holding "
                "clinc150/{train,val,oos_train,oos_val}.csv and massive_zh/{train,val}.csv "
                "(question,answer files)"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as work_dir:
        results = [
            result
            for data in sets
            for result in bench_data_set(
                data, args.k, args.seed, Path(work_dir), args.out, not args.no_full
            )
        ]
    if args.json:
        print(json.dumps({"seed": args.seed, "results": [
            {**asdict(r), "gain": None if np.isnan(r.gain) else r.gain} for r in results
        ]}))  # fmt: skip
        return 0
    print(
        "Open-set cold start (validation splits): in-scope accuracy (a fallback counts as wrong) "
        "and out-of-scope recall\nof this model at its own rule; ref@rec: the reference's "
        "in-scope accuracy at the same recall; gain: points above it;\nref own: the reference "
        "at its own rule (in-scope/recall); train s: this model/reference.\n"
    )
    print_table(results)
    elapsed = time.perf_counter() - started
    print(f"\ncurves: {args.out}/cold_start_*.png; seed {args.seed}; {elapsed:.0f} s; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
