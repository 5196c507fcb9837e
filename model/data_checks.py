"""Checks of a Q&A training set before training, each with what to do about it (pure Python).

`check_pairs(pairs)` returns a DataReport: `qabot train` prints it before training and refuses
(exit code 2) a set it cannot make a useful model from; the bot's /retrain receives the same
report from the training worker (see bot/retraining.py).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from model.datasets import QAPair, answer_key, quoted_texts, short_text
from model.text import match_key

ERROR, WARNING = "error", "warning"
# Finding codes (stable: scripts and the bot may rely on them).
TOO_FEW_ANSWERS = "too_few_answers"
SINGLE_WORDING = "single_wording"
CONFLICTING_QUESTION = "same_question_two_answers"
NEAR_DUPLICATE_ANSWERS = "near_duplicate_answers"
SHORT_ENTRY = "very_short_entry"
LONG_ENTRY = "very_long_entry"

# A question of fewer letters or digits than this says too little to learn from ("?", "a").
MIN_QUESTION_CHARS = 2
# Questions are featurized from their first 2,000 characters; past a few hundred the words
# that matter drown in the rest.
MAX_QUESTION_CHARS = 300
# Telegram cuts messages at 4,096 characters.
MAX_ANSWER_CHARS = 4096
# Two answers whose character trigrams overlap this much (Jaccard) say the same thing.
NEAR_DUPLICATE_SIMILARITY = 0.85
# Above this many answers, near duplicates are looked for among exact matches only (pairwise
# comparison grows with the square of the number of answers).
MAX_ANSWERS_COMPARED = 2000
# Questions quoted in a sentence (the finding itself keeps every row).
SHOWN_QUESTIONS = 3
# What the command line says after a refusal's errors.
REFUSED = "training refused, nothing was trained or promoted"


@dataclass(frozen=True)
class Finding:
    """One problem of the data: rows are 1-based positions among the pairs checked (the line of
    a one-file CSV is row + 1), answers are answer ids (model.datasets.answer_key)."""

    code: str
    severity: str
    message: str
    rows: tuple[int, ...] = ()
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataReport:
    n_pairs: int
    n_answers: int
    n_out_of_scope: int
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def refused(self) -> bool:
        """True when no useful model can be trained from the data (an error finding)."""
        return any(f.severity == ERROR for f in self.findings)

    def refusal(self) -> str:
        """Why the data was refused, in one message (empty when it was not)."""
        reasons = " ".join(f.message for f in self.findings if f.severity == ERROR)
        return f"{REFUSED}: {reasons}" if reasons else ""

    def to_dict(self) -> dict:
        return {**asdict(self), "refused": self.refused}

    @classmethod
    def from_dict(cls, data: dict) -> DataReport:
        findings = tuple(
            Finding(f["code"], f["severity"], f["message"], tuple(f["rows"]), tuple(f["answers"]))
            for f in data.get("findings", ())
        )
        return cls(data["n_pairs"], data["n_answers"], data["n_out_of_scope"], findings)

    def lines(self) -> list[str]:
        """The report in plain sentences, errors first."""
        head = (
            f"data: {_count(self.n_pairs, 'question')}, {_count(self.n_answers, 'answer')}, "
            f"{_count(self.n_out_of_scope, 'out-of-scope question')}"
        )
        ordered = sorted(self.findings, key=lambda f: f.severity != ERROR)
        return [head, *(f"{f.severity}: {f.message}" for f in ordered)]


def check_pairs(pairs: Sequence[QAPair]) -> DataReport:
    """Every check on a training set (empty answer = out-of-scope question)."""
    answered = [(row, p) for row, p in enumerate(pairs, start=1) if not p.out_of_scope]
    rows_by_answer: dict[str, list[int]] = defaultdict(list)
    text_of: dict[str, str] = {}
    for row, pair in answered:
        key = answer_key(pair.answer)
        rows_by_answer[key].append(row)
        text_of[key] = pair.answer
    findings = [
        *_too_few_answers(len(rows_by_answer), len(pairs)),
        *_single_wordings(rows_by_answer, pairs),
        *_conflicting_questions(pairs),
        *_near_duplicate_answers(text_of, rows_by_answer, pairs),
        *_entry_lengths(pairs),
    ]
    return DataReport(
        n_pairs=len(pairs),
        n_answers=len(rows_by_answer),
        n_out_of_scope=len(pairs) - len(answered),
        findings=tuple(findings),
    )


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}{'' if n == 1 else 's'}"


def _quoted(rows: Sequence[int], pairs: Sequence[QAPair]) -> str:
    """The questions of rows, as an admin finds them in the file or in /pairs: rows alone do
    not lead to them (a spreadsheet's row numbers count the header, /retrain's set has none)."""
    return quoted_texts([pairs[row - 1].question for row in rows], SHOWN_QUESTIONS)


def _too_few_answers(n_answers: int, n_pairs: int) -> list[Finding]:
    if n_answers >= 2:
        return []
    if n_pairs == 0:
        have = "the data has no questions"
    elif n_answers == 0:
        have = "every question has an empty answer (out of scope): there is nothing to answer"
    else:
        have = (
            "the data has a single answer: a bot that knows one answer gives it to every question"
        )
    return [
        Finding(
            TOO_FEW_ANSWERS,
            ERROR,
            f"{have}. Add questions with at least two different answers (a few wordings each), "
            "then train again.",
        )
    ]


def _single_wordings(
    rows_by_answer: dict[str, list[int]], pairs: Sequence[QAPair]
) -> list[Finding]:
    single = {key: rows[0] for key, rows in rows_by_answer.items() if len(rows) == 1}
    if not single or len(rows_by_answer) < 2:
        return []
    rows = sorted(single.values())
    return [
        Finding(
            SINGLE_WORDING,
            WARNING,
            f"{len(single)} of {len(rows_by_answer)} answers have a single question "
            f"({_quoted(rows, pairs)}): the bot recognises them only when asked almost word for "
            "word. Add two or three other ways of asking each.",
            tuple(rows),
            tuple(sorted(single, key=single.__getitem__)),
        )
    ]


def _conflicting_questions(pairs: Sequence[QAPair]) -> list[Finding]:
    by_question: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for row, pair in enumerate(pairs, start=1):
        target = "" if pair.out_of_scope else answer_key(pair.answer)
        by_question[match_key(pair.question)][target].append(row)
    findings = []
    for targets in by_question.values():
        if len(targets) < 2:
            continue
        rows = sorted(r for rows in targets.values() for r in rows)
        question = pairs[rows[0] - 1].question
        findings.append(
            Finding(
                CONFLICTING_QUESTION,
                WARNING,
                f"the question “{short_text(question)}” has {len(targets)} different answers"
                f"{' (one of them out of scope)' if '' in targets else ''}: the bot can learn "
                "only one. Keep the right one, or reword the questions so they differ.",
                tuple(rows),
                tuple(key for key in targets if key),
            )
        )
    return findings


def _trigrams(text: str) -> frozenset[str]:
    key = match_key(text)
    return frozenset(key[i : i + 3] for i in range(max(len(key) - 2, 1)))


def _near_duplicate_answers(
    text_of: dict[str, str], rows_by_answer: dict[str, list[int]], pairs: Sequence[QAPair]
) -> list[Finding]:
    keys = sorted(text_of, key=lambda k: rows_by_answer[k][0])
    grams = {key: _trigrams(text_of[key]) for key in keys}
    compare_all = len(keys) <= MAX_ANSWERS_COMPARED
    groups: list[list[str]] = []
    grouped: set[str] = set()
    for i, first in enumerate(keys):
        if first in grouped:
            continue
        group = [first]
        for second in keys[i + 1 :]:
            if second in grouped:
                continue
            a, b = grams[first], grams[second]
            same = a == b
            if not same and compare_all:
                same = len(a & b) >= NEAR_DUPLICATE_SIMILARITY * len(a | b)
            if same:
                group.append(second)
        if len(group) > 1:
            grouped.update(group)
            groups.append(group)
    findings = []
    for group in groups:
        rows = sorted(r for key in group for r in rows_by_answer[key])
        quoted = " / ".join(f"“{text}”" for text in _where_they_differ(
            [text_of[key] for key in group[:3]]
        ))  # fmt: skip
        findings.append(
            Finding(
                NEAR_DUPLICATE_ANSWERS,
                WARNING,
                f"{len(group)} answers are nearly the same text ({quoted}; asked as "
                f"{_quoted([rows_by_answer[key][0] for key in group], pairs)}): the bot splits "
                "their questions between them and hesitates. Use one answer text for all of them.",
                tuple(rows),
                tuple(group),
            )
        )
    return findings


def _where_they_differ(texts: list[str], context: int = 15) -> list[str]:
    """Texts cut short from a little before their first difference: near duplicates mostly
    differ late ("10:00–18:00" and "10:00-18:00"), and their first 40 characters look alike."""
    common = len(os.path.commonprefix(texts))
    start = common - context if common > 40 - context else 0
    return [("…" if start else "") + short_text(text[start:]) for text in texts]


def _entry_lengths(pairs: Sequence[QAPair]) -> list[Finding]:
    short = [r for r, p in enumerate(pairs, 1) if len(match_key(p.question)) < MIN_QUESTION_CHARS]
    long_questions = [r for r, p in enumerate(pairs, 1) if len(p.question) > MAX_QUESTION_CHARS]
    long_answers = [r for r, p in enumerate(pairs, 1) if len(p.answer) > MAX_ANSWER_CHARS]
    findings = []
    if short:
        findings.append(
            Finding(
                SHORT_ENTRY,
                WARNING,
                f"{_count(len(short), 'question')} with fewer than {MIN_QUESTION_CHARS} letters "
                f"or digits ({_quoted(short, pairs)}): too little to learn from. Write them as a "
                "user would ask.",
                tuple(short),
            )
        )
    if long_questions:
        findings.append(
            Finding(
                LONG_ENTRY,
                WARNING,
                f"{_count(len(long_questions), 'question')} longer than {MAX_QUESTION_CHARS} "
                f"characters ({_quoted(long_questions, pairs)}): the words that matter drown in "
                "the rest. Keep the question itself and move the explanation into the answer.",
                tuple(long_questions),
            )
        )
    if long_answers:
        # One finding per text, not per question: an answer asked five ways is one answer.
        first_rows = sorted({pairs[row - 1].answer: row for row in reversed(long_answers)}.values())
        texts = quoted_texts([pairs[row - 1].answer for row in first_rows], SHOWN_QUESTIONS)
        findings.append(
            Finding(
                LONG_ENTRY,
                WARNING,
                f"{_count(len(first_rows), 'answer')} longer than {MAX_ANSWER_CHARS} characters "
                f"({texts}): the bot cuts it there, as Telegram takes no longer messages. "
                "Shorten it or link to a page.",
                tuple(long_answers),
            )
        )
    return findings
