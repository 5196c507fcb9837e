"""A first day with a small FAQ: new wordings of its own questions, and unrelated questions.

    .venv/bin/python bench/small_faq.py [--data F ...] [--draws 0 1 2] [--json] [--no-glosses]
        [--no-sentences]
    .venv/bin/python bench/small_faq.py --cross-language [--data F ...] [--no-glosses]
        [--no-sentences]

An admin imports tens of answers with one to ten wordings each, no out-of-scope rows and no
validation split. For each data set and draw, one wording of each answer with three or more is
held out (drawn, seeded by the draw); the model is trained on the rest as `qabot train` trains
it (model.train.train, in this process) and asked the held-out wordings and the unrelated
questions of tests/data/unrelated_questions.csv (English and Chinese counted apart). Per data
set, summed over the draws: held-out wordings answered right at the fallback rule, whose right
answer is on top, answered right or offered among the "did you mean" buttons, answered wrong
(a wrong answer given, not a fallback); unrelated questions that fall back.

Default data sets: tests/data/coworking_faq.csv (49 answers, English and Chinese),
tests/data/shop_faq_train.csv, and two small FAQs drawn (seeded) from the training splits of
the shared data: 50 CLINC150 answers and 40 MASSIVE zh-CN answers with 1-8 wordings each.
Only training splits are read.

--cross-language: for the answers of a bilingual FAQ (default: the coworking FAQ) asked in both
English and Chinese, all wordings of one language are held out and the model, trained on the
rest, is asked them; both directions. --no-glosses (either mode) trains without the Chinese
words' English glosses (FeatureSpec.chinese_glosses), as models were trained before them;
--no-sentences without the sentence model (TrainConfig.sentence_shares empty).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.datasets import QAPair, answer_key, read_pair_files, read_pairs  # noqa: E402
from model.predictor import AnswerModel, Prediction  # noqa: E402
from model.text import FeatureSpec, match_key  # noqa: E402
from model.train import train  # noqa: E402

TESTS_DATA = ROOT / "tests" / "data"
UNRELATED = TESTS_DATA / "unrelated_questions.csv"
# An answer needs this many wordings for one of them to be held out.
MIN_WORDINGS_TO_HOLD_OUT = 3
# The synthetic FAQs: answers drawn from a data set's training split, each with 1..MAX wordings.
SYNTHETIC_SEED = 0
SYNTHETIC_MAX_WORDINGS = 8


@dataclass(frozen=True)
class SmallFaq:
    name: str
    pairs: list[QAPair]


@dataclass
class Figures:
    """Counts of one data set over its draws."""

    name: str
    answers: int
    questions: int
    held_out: int = 0
    answered_right: int = 0
    right_on_top: int = 0
    answered_or_offered: int = 0
    answered_wrong: int = 0
    unrelated_en: int = 0
    unrelated_en_fallback: int = 0
    unrelated_zh: int = 0
    unrelated_zh_fallback: int = 0
    train_seconds: float = 0.0

    def add(self, other: Figures) -> None:
        for name, value in asdict(other).items():
            if name not in ("name", "answers", "questions"):
                setattr(self, name, getattr(self, name) + value)


def synthetic_faq(name: str, path: Path, n_answers: int, seed: int = SYNTHETIC_SEED) -> SmallFaq:
    """n_answers answers of the Q&A file at path, each with 1..SYNTHETIC_MAX_WORDINGS of its
    questions (drawn, seeded)."""
    rng = np.random.default_rng(seed)
    by_answer: dict[str, list[QAPair]] = {}
    for pair in read_pair_files([path]):
        if not pair.out_of_scope:
            by_answer.setdefault(pair.answer, []).append(pair)
    answers = sorted(by_answer)
    chosen = sorted(rng.choice(len(answers), n_answers, replace=False).tolist())
    pairs = []
    for index in chosen:
        questions = by_answer[answers[index]]
        count = min(len(questions), int(rng.integers(1, SYNTHETIC_MAX_WORDINGS + 1)))
        pairs += [questions[i] for i in sorted(rng.choice(len(questions), count, replace=False))]
    return SmallFaq(name, pairs)


def synthetic_sources(data_dir: Path) -> tuple[Path, Path]:
    """The training splits the synthetic FAQs are drawn from: CLINC150's, MASSIVE zh-CN's."""
    return data_dir / "clinc150" / "train.csv", data_dir / "massive_zh" / "train.csv"


def default_sets(data_dir: Path) -> list[SmallFaq]:
    clinc, massive = synthetic_sources(data_dir)
    return [
        SmallFaq("coworking FAQ (en+zh)", read_pairs(TESTS_DATA / "coworking_faq.csv")),
        SmallFaq("shop FAQ (en)", read_pairs(TESTS_DATA / "shop_faq_train.csv")),
        synthetic_faq("CLINC150, 50 answers (en)", clinc, 50),
        synthetic_faq("MASSIVE zh-CN, 40 answers", massive, 40),
    ]


def hold_out_wordings(pairs: list[QAPair], draw: int) -> tuple[list[QAPair], list[QAPair]]:
    """(training pairs, held-out pairs): one wording (drawn, seeded by draw) of each answer with
    MIN_WORDINGS_TO_HOLD_OUT distinct wordings or more; a repeated row goes with its wording."""
    rng = np.random.default_rng(draw)
    wordings: dict[str, list[str]] = {}
    for pair in pairs:
        if pair.out_of_scope:
            continue
        keys = wordings.setdefault(answer_key(pair.answer), [])
        if match_key(pair.question) not in keys:
            keys.append(match_key(pair.question))
    held = {
        (answer, keys[int(rng.integers(len(keys)))])
        for answer, keys in wordings.items()
        if len(keys) >= MIN_WORDINGS_TO_HOLD_OUT
    }
    is_held = [(answer_key(p.answer), match_key(p.question)) in held for p in pairs]
    training = [p for p, h in zip(pairs, is_held, strict=True) if not h]
    held_out = {
        (answer_key(p.answer), match_key(p.question)): p
        for p, h in zip(pairs, is_held, strict=True)
        if h
    }
    return training, list(held_out.values())


def is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def right_offered(prediction: Prediction, answer_id: str) -> bool:
    return prediction.answer_id == answer_id or any(
        s.answer_id == answer_id for s in prediction.suggestions
    )


def hold_out_language(pairs: list[QAPair], chinese: bool) -> tuple[list[QAPair], list[QAPair]]:
    """(training pairs, held-out pairs): every wording in Chinese (else in English) of the
    answers asked in both languages."""
    languages: dict[str, set[bool]] = {}
    for pair in pairs:
        if not pair.out_of_scope:
            languages.setdefault(answer_key(pair.answer), set()).add(is_chinese(pair.question))
    both = {answer for answer, seen in languages.items() if len(seen) == 2}
    is_held = [
        not p.out_of_scope and answer_key(p.answer) in both and is_chinese(p.question) == chinese
        for p in pairs
    ]
    training = [p for p, h in zip(pairs, is_held, strict=True) if not h]
    return training, [p for p, h in zip(pairs, is_held, strict=True) if h]


def bench_draw(
    faq: SmallFaq,
    draw: int,
    work: Path,
    unrelated: list[QAPair],
    held: tuple[list[QAPair], list[QAPair]] | None = None,
    tuning: dict | None = None,
) -> Figures:
    """Figures of one training: on held (training pairs, held-out pairs), else on the wordings
    held out by draw."""
    training, held_out = held or hold_out_wordings(faq.pairs, draw)
    result = train(training, work / f"draw{draw}", seed=0, **(tuning or {}))
    model = AnswerModel.load(result.path)
    figures = Figures(faq.name, len({answer_key(p.answer) for p in faq.pairs}), len(faq.pairs))
    figures.train_seconds = result.metrics["train_seconds"]
    predictions = model.predict_batch([p.question for p in held_out])
    for pair, prediction in zip(held_out, predictions, strict=True):
        right = answer_key(pair.answer)
        figures.held_out += 1
        figures.answered_right += not prediction.fallback and prediction.answer_id == right
        figures.right_on_top += prediction.candidates[0][0] == right
        figures.answered_or_offered += right_offered(prediction, right)
        figures.answered_wrong += not prediction.fallback and prediction.answer_id != right
    for pair, prediction in zip(
        unrelated, model.predict_batch([p.question for p in unrelated]), strict=True
    ):
        if is_chinese(pair.question):
            figures.unrelated_zh += 1
            figures.unrelated_zh_fallback += prediction.fallback
        else:
            figures.unrelated_en += 1
            figures.unrelated_en_fallback += prediction.fallback
    return figures


def bench_faq(
    faq: SmallFaq,
    draws: list[int],
    work: Path,
    unrelated: list[QAPair],
    tuning: dict | None = None,
) -> tuple[Figures, list[Figures]]:
    """(the figures summed over the draws, each draw's)."""
    total = Figures(faq.name, len({answer_key(p.answer) for p in faq.pairs}), len(faq.pairs))
    per_draw = []
    for draw in draws:
        print(f"{faq.name}: draw {draw} ...", file=sys.stderr)
        figures = bench_draw(faq, draw, work, unrelated, tuning=tuning)
        per_draw.append(figures)
        total.add(figures)
    return total, per_draw


def share(count: int, total: int) -> str:
    return "   n/a" if not total else f"{100 * count / total:5.1f}%"


def print_table(results: list[tuple[Figures, list[Figures]]]) -> None:
    header = (
        f"{'data':<28} {'ans':>4} {'q':>4} {'held':>4} {'right':>7} {'draws':>17} {'on top':>7} "
        f"{'offered':>7} {'wrong':>7} {'unrel en':>8} {'unrel zh':>8} {'train s':>7}"
    )
    print(header)
    print("-" * len(header))
    for total, per_draw in results:
        draws = "/".join(
            f"{100 * f.answered_right / f.held_out:.0f}" if f.held_out else "-" for f in per_draw
        )
        print(
            f"{total.name:<28} {total.answers:>4} {total.questions:>4} {total.held_out:>4} "
            f"{share(total.answered_right, total.held_out):>7} {draws:>17} "
            f"{share(total.right_on_top, total.held_out):>7} "
            f"{share(total.answered_or_offered, total.held_out):>7} "
            f"{share(total.answered_wrong, total.held_out):>7} "
            f"{share(total.unrelated_en_fallback, total.unrelated_en):>8} "
            f"{share(total.unrelated_zh_fallback, total.unrelated_zh):>8} "
            f"{total.train_seconds / max(1, len(per_draw)):7.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, action="append",
        help="a small FAQ's Q&A file (repeatable; default: the four sets of the docstring)",
    )  # fmt: skip
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / ".." / "shared" / "data",
        help="folder holding clinc150/ and massive_zh/ (the synthetic FAQs)",
    )  # fmt: skip
    parser.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--cross-language", action="store_true",
        help="hold out one language of the answers asked in both (see above)",
    )  # fmt: skip
    parser.add_argument(
        "--no-glosses", action="store_true", help="train without the Chinese words' glosses"
    )
    parser.add_argument(
        "--no-sentences", action="store_true", help="train without the sentence model"
    )
    args = parser.parse_args(argv)
    tuning: dict = {}
    if args.no_glosses:
        tuning["features"] = FeatureSpec(chinese_glosses=False)
    if args.no_sentences:
        tuning["sentence_shares"] = ()
    if args.cross_language:
        return cross_language(args.data or [TESTS_DATA / "coworking_faq.csv"], tuning, args.json)
    if args.data:
        sets = [SmallFaq(path.name, read_pair_files([path])) for path in args.data]
    else:
        missing = [str(path) for path in synthetic_sources(args.data_dir) if not path.is_file()]
        if missing:
            parser.error(
                f"no data set at {', '.join(missing)}: --data-dir names a folder holding "
                "clinc150/train.csv and massive_zh/train.csv (question,answer files), or give "
                "--data files"
            )
        sets = default_sets(args.data_dir)
    unrelated = read_pairs(UNRELATED)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="small-faq-") as work_dir:
        results = [
            bench_faq(faq, args.draws, Path(work_dir) / str(number), unrelated, tuning)
            for number, faq in enumerate(sets)
        ]
    elapsed = time.perf_counter() - started
    load = os.getloadavg()[0]
    if args.json:
        print(json.dumps({
            "draws": args.draws, "seconds": round(elapsed, 1), "load_average": load,
            "results": [{**asdict(total), "per_draw": [asdict(f) for f in per_draw]}
                        for total, per_draw in results],
        }))  # fmt: skip
        return 0
    print(
        "Held-out wordings of a small FAQ (one of each answer with 3+ wordings per draw, summed "
        "over the draws):\nright: answered right at the fallback rule (draws: each draw's); on "
        "top: right answer ranked first;\noffered: answered right or among the buttons; wrong: a "
        "wrong answer given; unrel: unrelated questions\nthat fall back (English, Chinese); "
        "train s: per training (cross-validation and the served model).\n"
    )
    print_table(results)
    print(f"\ndraws {args.draws}; {elapsed:.0f} s; load average {load:.2f}")
    return 0


def cross_language(paths: list[Path], tuning: dict, as_json: bool) -> int:
    unrelated = read_pairs(UNRELATED)
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="small-faq-") as work_dir:
        for number, path in enumerate(paths):
            pairs = read_pair_files([path])
            for chinese in (True, False):
                name = f"{path.stem}: {'zh' if chinese else 'en'} held out"
                print(f"{name} ...", file=sys.stderr)
                faq = SmallFaq(name, pairs)
                held = hold_out_language(pairs, chinese)
                figures = bench_draw(
                    faq, 0, Path(work_dir) / f"{number}-{chinese}", unrelated, held, tuning
                )
                results.append((figures, [figures]))
    elapsed = time.perf_counter() - started
    load = os.getloadavg()[0]
    if as_json:
        print(json.dumps({
            "glosses": "features" not in tuning,
            "sentences": "sentence_shares" not in tuning,
            "seconds": round(elapsed, 1), "load_average": load,
            "results": [asdict(total) for total, _ in results],
        }))  # fmt: skip
        return 0
    print(
        "The answers asked in both languages, one language's wordings held out (trained on the "
        f"rest); glosses {'off' if 'features' in tuning else 'on'}, sentence model "
        f"{'off' if 'sentence_shares' in tuning else 'on'}.\n"
        "right: answered right at the fallback rule; "
        "on top: right answer ranked first; offered: answered right or\namong the buttons; wrong: "
        "a wrong answer given; unrel: unrelated questions that fall back.\n"
    )
    print_table(results)
    print(f"\n{elapsed:.0f} s; load average {load:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
