"""Evaluation of a loaded model on Q&A pairs (CLINC150 protocol), NumPy only."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from model.commands import DATA_REFUSED, eval_parser
from model.datasets import QAPair, answer_key, quoted_texts, read_pair_files
from model.figures import EVALUATION, figure_phrases
from model.predictor import AnswerModel, Prediction
from model.registry import ModelRegistry

LATENCY_SAMPLES = 500
THROUGHPUT_BATCH = 1000
THROUGHPUT_RUNS = 5
MOST_CONFUSED = 30
FALLBACK_LABEL = "(fallback)"


def evaluate(model: AnswerModel, pairs: list[QAPair]) -> dict:
    """Accuracy on in-scope pairs (a fallback counts as wrong), OOS recall, latency, throughput."""
    if not pairs:
        raise ValueError("no pairs to evaluate on")
    questions = [p.question for p in pairs]
    predictions = model.predict_batch(questions)
    in_scope = [(p, pred) for p, pred in zip(pairs, predictions, strict=True) if not p.out_of_scope]
    oos = [pred for p, pred in zip(pairs, predictions, strict=True) if p.out_of_scope]
    correct = sum(pred.answer_id == answer_key(p.answer) for p, pred in in_scope)
    suggested = sum(bool(pred.suggestions) for _, pred in in_scope)
    correct_or_suggested = sum(
        pred.answer_id == answer_key(p.answer)
        or any(s.answer_id == answer_key(p.answer) for s in pred.suggestions)
        for p, pred in in_scope
    )
    top_right = [
        bool(pred.candidates)
        and pred.candidates[0][0] == answer_key(p.answer)
        and not p.out_of_scope
        for p, pred in zip(pairs, predictions, strict=True)
    ]
    return {
        "in_scope_accuracy": correct / len(in_scope) if in_scope else None,
        "oos_recall": sum(pred.fallback for pred in oos) / len(oos) if oos else None,
        "suggested_rate": suggested / len(in_scope) if in_scope else None,
        "answered_or_suggested": correct_or_suggested / len(in_scope) if in_scope else None,
        "validation": EVALUATION,
        "threshold": model.threshold,
        "margin": model.margin,
        "n": len(pairs),
        "n_in_scope": len(in_scope),
        "n_oos": len(oos),
        "calibration_error": calibration_error([p.confidence for p in predictions], top_right),
        "model_version": model.version,
        **measure_speed(model.predict, model.predict_batch, questions),
    }


def unknown_answers(model: AnswerModel, pairs: Sequence[QAPair]) -> list[str]:
    """The answers of pairs the model has no class for, in the file's order."""
    known = model.answers()
    wanted = {answer_key(p.answer): p.answer for p in pairs if not p.out_of_scope}
    return [answer for key, answer in wanted.items() if key not in known]


def calibration_error(confidences: Sequence[float], right: Sequence[bool], bins: int = 15) -> float:
    """Expected calibration error: mean |confidence - accuracy| over equal-width confidence bins."""
    confidence = np.asarray(confidences, dtype=np.float64)
    correct = np.asarray(right, dtype=np.float64)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gap = 0.0
    for b in np.unique(which):
        members = which == b
        gap += members.sum() * abs(confidence[members].mean() - correct[members].mean())
    return round(float(gap / len(confidence)), 4)


def measure_speed(
    predict_one: Callable[[str], object],
    predict_batch: Callable[[list[str]], object],
    questions: Sequence[str],
) -> dict:
    """Single-question latency percentiles, and the rate of a batch of 1,000 questions: the best
    of THROUGHPUT_RUNS batches, as other processes on the machine can only slow a run down.
    Timed as the bot serves: with one BLAS thread (see bot.run.serve)."""
    sample = [questions[i % len(questions)] for i in range(LATENCY_SAMPLES)]
    batch = [questions[i % len(questions)] for i in range(THROUGHPUT_BATCH)]
    timings, elapsed = [], []
    with threadpool_limits(limits=1, user_api="blas"):
        for question in sample[:20]:
            predict_one(question)  # warm caches before timing
        for question in sample:
            start = time.perf_counter()
            predict_one(question)
            timings.append((time.perf_counter() - start) * 1000)
        for _ in range(THROUGHPUT_RUNS):
            start = time.perf_counter()
            predict_batch(batch)
            elapsed.append(time.perf_counter() - start)
    return {
        "latency_ms": {
            "p50": round(float(np.percentile(timings, 50)), 3),
            "p99": round(float(np.percentile(timings, 99)), 3),
        },
        "throughput_per_s": round(THROUGHPUT_BATCH / min(elapsed)),
    }


def main(argv: list[str] | None = None) -> int:
    args = eval_parser().parse_args(argv)
    try:
        pairs = read_pair_files(args.data, args.oos)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return DATA_REFUSED
    try:
        model = ModelRegistry(args.model_dir).load_current()
        if model is None:
            raise ValueError(f"no current model in {args.model_dir}: train one first")
        result = evaluate(model, pairs)
        if args.report:
            write_report(model, pairs, args.report)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if unknown := unknown_answers(model, pairs):
        print(
            f"warning: {len(unknown)} answers of the file are not answers of model "
            f"{model.version} ({quoted_texts(unknown)}): their questions count as answered "
            "wrong. Copy the answer texts from the training data (qabot export --pairs), or "
            "leave the answer empty for questions the bot should not answer.",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(result)
    return 0


def _print_human(result: dict) -> None:
    print(
        f"model {result['model_version']} on {result['n']} questions "
        f"({result['n_in_scope']} in scope, {result['n_oos']} out of scope)"
    )
    for phrase in figure_phrases(result)[:-1]:  # the last one says on what data: said above
        print(f"  {phrase}")
    print(f"  fallback threshold: {result['threshold']} (margin {result['margin']})")
    print(f"  calibration error (ECE): {result['calibration_error']}")
    print(
        f"  latency: p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms;"
        f" {result['throughput_per_s']} questions/s in a batch of {THROUGHPUT_BATCH}"
    )


def write_report(model: AnswerModel, pairs: list[QAPair], out_dir: Path) -> None:
    """Per-answer precision/recall/F1, the most confused answer pairs, a confidence histogram."""
    from sklearn.metrics import precision_recall_fscore_support

    out_dir.mkdir(parents=True, exist_ok=True)
    predictions = model.predict_batch([p.question for p in pairs])
    # The fallback is one more "answer" here: the right reply to out-of-scope questions.
    truth = ["" if p.out_of_scope else answer_key(p.answer) for p in pairs]
    guess = [pred.answer_id or "" for pred in predictions]
    texts = {**model.answers(), "": FALLBACK_LABEL}
    texts.update(
        {
            answer_key(p.answer): p.answer
            for p in pairs
            if not p.out_of_scope and answer_key(p.answer) not in texts
        }
    )
    labels = sorted(set(truth) | set(guess))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, guess, labels=labels, zero_division=0
    )
    with open(out_dir / "per_answer.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["answer_id", "answer", "support", "precision", "recall", "f1"])
        for row in sorted(
            zip(labels, precision, recall, f1, support, strict=True), key=lambda r: (r[3], r[0])
        ):
            label, p, r, f, n = row
            writer.writerow([label, texts[label], int(n), f"{p:.4f}", f"{r:.4f}", f"{f:.4f}"])

    confusions = Counter((t, g) for t, g in zip(truth, guess, strict=True) if t != g)
    with open(out_dir / "confusions.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["count", "expected_id", "expected", "given_id", "given"])
        for (expected, given), count in confusions.most_common(MOST_CONFUSED):
            writer.writerow([count, expected, texts[expected], given, texts[given]])

    _plot_confidence(model, pairs, predictions, truth, out_dir / "confidence.png")


def _plot_confidence(
    model: AnswerModel,
    pairs: list[QAPair],
    predictions: list[Prediction],
    truth: list[str],
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[float]] = {
        "in scope, right answer first": [],
        "in scope, wrong answer first": [],
        "out of scope": [],
    }
    for pair, pred, expected in zip(pairs, predictions, truth, strict=True):
        best = pred.candidates[0][0] if pred.candidates else None
        if pair.out_of_scope:
            groups["out of scope"].append(pred.confidence)
        elif best == expected:
            groups["in scope, right answer first"].append(pred.confidence)
        else:
            groups["in scope, wrong answer first"].append(pred.confidence)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(0, 1, 41).tolist()
    for name, values in groups.items():
        if values:
            axes.hist(values, bins=bins, alpha=0.6, label=f"{name} ({len(values)})")
    axes.axvline(
        model.threshold,
        color="black",
        linestyle="--",
        label=f"fallback threshold {model.threshold:.3f}",
    )
    axes.set_yscale("log")
    axes.set_xlabel("confidence (probability of the best in-scope answer)")
    axes.set_ylabel("questions")
    axes.set_title(f"Confidence, model {model.version}")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
