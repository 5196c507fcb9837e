"""CLINC150 benchmark: this model beside a TF-IDF + logistic regression reference.

    .venv/bin/python bench/clinc150.py [--data-dir ../shared/data/clinc150] [--out bench/out]
    .venv/bin/python bench/clinc150.py --dataset massive_zh      # ../shared/data/massive_zh
    .venv/bin/python bench/clinc150.py --train F --val F [--oos F] [--oos-val F]   # any files

Both are trained on train (+ oos_train); each chooses its fallback rule on val (+ oos_val) with
the same rule (model.calibration.choose_rule) and is scored on those same validation splits, so
the figures are validation figures, not test figures. "top-1" is the accuracy when always
answering (the fallback aside): the fair comparison for a set without out-of-scope questions.
The published figures (from the dataset's README) are test figures, shown for orientation.
Prints one table; writes `accuracy_vs_oos_recall.png` (in-scope accuracy against out-of-scope
recall over thresholds).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.calibration import OUT_OF_SCOPE, THRESHOLDS, choose_rule, scores  # noqa: E402
from model.datasets import QAPair, read_pair_files  # noqa: E402
from model.evaluate import evaluate, measure_speed  # noqa: E402
from model.registry import ModelRegistry  # noqa: E402
from model.train import TrainConfig  # noqa: E402

MB = 1024 * 1024
# Loads a model in a fresh process, answers, and prints its resident memory in bytes.
SERVING_PROBE = """
import sys, psutil
{load}
for question in {questions!r}:
    predict(question)
print(psutil.Process().memory_info().rss)
"""


@dataclass(frozen=True)
class Splits:
    """The benchmark's files: training and validation questions, with out-of-scope ones or not."""

    name: str
    train: Path
    val: Path
    oos_train: Path | None = None
    oos_val: Path | None = None

    @classmethod
    def in_folder(cls, folder: Path) -> Splits:
        """train.csv and val.csv of a folder, with oos_train.csv and oos_val.csv if it has them."""

        def optional(name: str) -> Path | None:
            return folder / name if (folder / name).exists() else None

        return cls(folder.name, folder / "train.csv", folder / "val.csv",
                   optional("oos_train.csv"), optional("oos_val.csv"))  # fmt: skip

    def train_arguments(self) -> list[str]:
        arguments = ["--data", str(self.train), "--val", str(self.val)]
        if self.oos_train:
            arguments += ["--oos", str(self.oos_train)]
        if self.oos_val:
            arguments += ["--oos-val", str(self.oos_val)]
        return arguments


@dataclass
class Row:
    name: str
    in_scope_accuracy: float
    oos_recall: float | None
    top1_accuracy: float | None = None
    train_seconds: float | None = None
    train_cpu_seconds: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    batch_per_s: float | None = None
    rss_mb: float | None = None
    size_mb: float | None = None


def load_splits(splits: Splits) -> tuple[list[QAPair], list[QAPair]]:
    def optional(path: Path | None) -> list[Path]:
        return [path] if path else []

    train = read_pair_files([splits.train], optional(splits.oos_train))
    val = read_pair_files([splits.val], optional(splits.oos_val))
    return train, val


def top1_accuracy(probs: np.ndarray, labels: np.ndarray, oos_class: int | None) -> float | None:
    """Accuracy on the in-scope questions of the best in-scope answer (no fallback)."""
    from model.predictor import without_oos

    in_scope = labels != OUT_OF_SCOPE
    if not in_scope.any():
        return None
    best = without_oos(probs, oos_class).argmax(axis=1)
    return float((best == labels)[in_scope].mean())


def train_this_model(splits: Splits, model_dir: Path, seed: int) -> dict:
    """Run the training command as a user would; returns its final 'done' event."""
    command = [
        sys.executable, "-m", "model.train", *splits.train_arguments(),
        "--model-dir", str(model_dir), "--seed", str(seed), "--progress-json",
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    done: dict = {}
    for line in process.stdout:
        event = json.loads(line)
        if event["event"] == "epoch":
            print(f"  epoch {event['epoch']}/{event['epochs']} loss {event['loss']}"
                  f" val accuracy {event.get('val_accuracy')}", file=sys.stderr)  # fmt: skip
        elif event["event"] == "done":
            done = event
    if process.wait() != 0 or not done:
        raise SystemExit("training failed")
    done["wall_seconds"] = time.perf_counter() - started
    return done


def labels_for(pairs: list[QAPair], classes: list[str | None], key) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    return np.array([OUT_OF_SCOPE if p.out_of_scope else index[key(p.answer)] for p in pairs])


def curve(
    probs: np.ndarray, labels: np.ndarray, oos_class: int | None, gate: np.ndarray | None = None
) -> np.ndarray:
    """(OOS recall, in-scope accuracy) for every threshold of the grid, margin 0; the threshold
    applies to gate's confidence when given (see model.predictor.decide)."""
    from model.calibration import FallbackRule

    points = []
    for threshold in THRESHOLDS:
        figures = scores(probs, labels, oos_class, FallbackRule(float(threshold), 0.0), gate)
        points.append((figures["oos_recall"], figures["in_scope_accuracy"]))
    return np.array(points, dtype=float)


def serving_rss(load: str, questions: list[str]) -> float:
    probe = SERVING_PROBE.format(load=load, questions=questions)
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip().splitlines()[-1]) / MB


def directory_size(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MB


def bench_this_model(splits: Splits, work: Path, val: list[QAPair], seed: int):
    print("training this model (python -m model.train) ...", file=sys.stderr)
    done = train_this_model(splits, work / "models", seed)
    model = ModelRegistry(work / "models").load_current()
    assert model is not None
    result = evaluate(model, val)
    from model.datasets import answer_key

    labels = labels_for(val, model.classes, answer_key)
    gate, probs = model.gate_and_answer_probabilities([p.question for p in val])
    points = curve(probs, labels, model.oos_class, gate)
    load = (
        "from model.predictor import AnswerModel\n"
        f"predict = AnswerModel.load({str(model.path)!r}).predict"
    )
    members = ["Keras MLP"]
    if model.linear is not None:
        members.append("linear SVM")
    if model.sentence is not None:
        members.append("sentence model")
    row = Row(
        name=f"this model ({' + '.join(members)}, NumPy serving)",
        in_scope_accuracy=result["in_scope_accuracy"],
        oos_recall=result["oos_recall"],
        top1_accuracy=top1_accuracy(probs, labels, model.oos_class),
        train_seconds=done["metrics"]["train_seconds"],
        train_cpu_seconds=done["metrics"]["train_cpu_seconds"],
        p50_ms=result["latency_ms"]["p50"],
        p99_ms=result["latency_ms"]["p99"],
        batch_per_s=result["throughput_per_s"],
        rss_mb=serving_rss(load, [p.question for p in val[:200]]),
        size_mb=directory_size(model.path),
    )
    return row, points, done, model, result


def bench_reference(train: list[QAPair], val: list[QAPair], work: Path, target_recall: float,
                    matched_recall: float):  # fmt: skip
    """TF-IDF (word 1-2 + character 2-5 grams) + logistic regression, as scikit-learn offers."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    print("training the reference (scikit-learn) ...", file=sys.stderr)
    started, started_cpu = time.perf_counter(), time.process_time()
    pipeline = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        ),
        LogisticRegression(max_iter=1000),
    )
    pipeline.fit([p.question for p in train], [p.answer for p in train])
    train_seconds = time.perf_counter() - started
    train_cpu_seconds = time.process_time() - started_cpu

    classes: list[str | None] = [c or None for c in pipeline.classes_]
    oos_class = classes.index(None) if None in classes else None
    labels = labels_for(val, classes, lambda answer: answer)
    probs = pipeline.predict_proba([p.question for p in val])
    rule = choose_rule(probs, labels, oos_class, target_recall)
    own = scores(probs, labels, oos_class, rule)
    matched = scores(probs, labels, oos_class,
                     choose_rule(probs, labels, oos_class, matched_recall))  # fmt: skip
    questions = [p.question for p in val]
    speed = measure_speed(lambda q: pipeline.predict_proba([q]), pipeline.predict_proba, questions)
    pickled = work / "reference.pickle"
    pickled.write_bytes(pickle.dumps(pipeline))
    load = (
        "import pickle\n"
        f"predict = lambda q, p=pickle.load(open({str(pickled)!r}, 'rb')): p.predict_proba([q])"
    )
    row = Row(
        name="reference: TF-IDF word 1-2 + char 2-5, LogisticRegression",
        in_scope_accuracy=own["in_scope_accuracy"],
        oos_recall=own["oos_recall"],
        top1_accuracy=top1_accuracy(probs, labels, oos_class),
        train_seconds=train_seconds,
        train_cpu_seconds=train_cpu_seconds,
        p50_ms=speed["latency_ms"]["p50"],
        p99_ms=speed["latency_ms"]["p99"],
        batch_per_s=speed["throughput_per_s"],
        rss_mb=serving_rss(load, questions[:200]),
        size_mb=pickled.stat().st_size / MB,
    )
    matched_row = Row(
        name="reference at this model's OOS recall",
        in_scope_accuracy=matched["in_scope_accuracy"],
        oos_recall=matched["oos_recall"],
    )
    return row, matched_row, curve(probs, labels, oos_class)


def published_rows(readme: Path) -> list[Row]:
    """The 'Published results' table of the dataset README (test split figures)."""
    rows = []
    pattern = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*$")
    for line in readme.read_text(encoding="utf-8").splitlines():
        match = pattern.match(line)
        if match:
            name, accuracy, recall = match.groups()
            rows.append(Row(f"published, test split: {name}", float(accuracy) / 100,
                            float(recall) / 100))  # fmt: skip
    return rows


def print_table(rows: list[Row]) -> None:
    def number(value: float | None, fmt: str) -> str:
        return "-" if value is None or np.isnan(value) else format(value, fmt)

    def percent(value: float | None) -> str:
        return "-" if value is None or np.isnan(value) else f"{100 * value:.1f}%"

    header = (f"{'model':<58} {'in-scope':>8} {'OOS rec':>8} {'top-1':>6} {'train s':>8} "
              f"{'CPU s':>7} {'p50 ms':>7} {'p99 ms':>7} {'batch q/s':>9} {'RSS MB':>7} "
              f"{'size MB':>7}")  # fmt: skip
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.name:<58} {percent(row.in_scope_accuracy):>8} {percent(row.oos_recall):>8}"
            f" {percent(row.top1_accuracy):>6}"
            f" {number(row.train_seconds, '.1f'):>8} {number(row.train_cpu_seconds, '.1f'):>7}"
            f" {number(row.p50_ms, '.3f'):>7}"
            f" {number(row.p99_ms, '.3f'):>7} {number(row.batch_per_s, ',.0f'):>9}"
            f" {number(row.rss_mb, '.0f'):>7} {number(row.size_mb, '.1f'):>7}"
        )


def plot(
    curves: dict[str, np.ndarray],
    marks: dict[str, tuple[float, float]],
    path: Path,
    title: str = "CLINC150",
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    for (name, points), color in zip(curves.items(), ("tab:blue", "tab:orange"), strict=False):
        axes.plot(100 * points[:, 0], 100 * points[:, 1], label=name, color=color)
        recall, accuracy = marks[name]
        axes.plot(100 * recall, 100 * accuracy, "o", color=color)
    axes.set_ylim(50, 100)
    axes.set_xlabel("out-of-scope recall, % (val)")
    axes.set_ylabel("in-scope accuracy, % (val; a fallback counts as wrong)")
    axes.set_title(f"{title} validation: accuracy against OOS recall over thresholds")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="folder of train.csv, val.csv (and "
                        "oos_train.csv, oos_val.csv); default ../shared/data/DATASET")  # fmt: skip
    parser.add_argument("--dataset", default="clinc150", help="clinc150 (default) or massive_zh")
    parser.add_argument("--train", type=Path, help="training Q&A file (instead of a folder)")
    parser.add_argument("--val", type=Path, help="validation Q&A file (with --train)")
    parser.add_argument("--oos", type=Path, help="out-of-scope training questions (with --train)")
    parser.add_argument("--oos-val", type=Path, help="out-of-scope validation questions")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.train or args.val:
        if not (args.train and args.val):
            parser.error("--train and --val go together")
        splits = Splits(args.train.stem, args.train, args.val, args.oos, args.oos_val)
    else:
        splits = Splits.in_folder(args.data_dir or ROOT / ".." / "shared" / "data" / args.dataset)
    args.out.mkdir(parents=True, exist_ok=True)
    started_load = os.getloadavg()[0]
    train, val = load_splits(splits)

    with tempfile.TemporaryDirectory(prefix="bench-") as work_dir:
        work = Path(work_dir)
        ours, our_curve, done, model, result = bench_this_model(splits, work, val, args.seed)
        reference, matched, reference_curve = bench_reference(
            train, val, work, TrainConfig().target_oos_recall, ours.oos_recall
        )
    curves_path = args.out / f"accuracy_vs_oos_recall_{splits.name}.png"
    if ours.oos_recall is not None:
        plot(
            {"this model": our_curve, "TF-IDF + LogisticRegression": reference_curve},
            {
                "this model": (ours.oos_recall, ours.in_scope_accuracy),
                "TF-IDF + LogisticRegression": (reference.oos_recall, reference.in_scope_accuracy),
            },
            curves_path,
            splits.name,
        )
    print(f"{splits.name}, {len(train)} training questions; fallback rule and figures on the "
          f"validation splits ({len(val)} questions). Published rows: test split.\n")  # fmt: skip
    # The reference at this model's recall, when its own rule landed on another one.
    extra = [matched] if ours.oos_recall not in (None, reference.oos_recall) else []
    published = published_rows(splits.train.parent / "README.md")
    print_table([ours, reference, *extra, *published])
    print(
        f"\nthis model: threshold {model.threshold}, margin {model.margin}, temperature "
        f"{model.temperature:.3f}, {done['metrics']['n_features']} features; training "
        f"{ours.train_cpu_seconds:.1f} CPU s, {ours.train_seconds:.1f} s in the trainer "
        f"({done['wall_seconds']:.1f} s wall, with Python and TensorFlow start) = "
        f"{ours.train_cpu_seconds / reference.train_cpu_seconds:.2f}x the reference's CPU "
        f"({reference.train_cpu_seconds:.1f} s; {ours.train_seconds / reference.train_seconds:.2f}x"
        f" its wall time)"
    )
    print(
        f"did you mean: suggestions on {result['suggested_rate']:.1%} of the in-scope questions;"
        f" right answer given or among them for {result['answered_or_suggested']:.1%}"
    )
    if ours.oos_recall is not None:
        print(f"curve: {curves_path}")
    print(f"machine: {os.cpu_count()} CPUs; load average {started_load:.2f} at the start, "
          f"{os.getloadavg()[0]:.2f} at the end (timings count only when it is low)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
