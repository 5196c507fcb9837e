"""Checks of a Q&A training set before training, each with what to do about it (pure Python).

`check_pairs(pairs)` returns a DataReport: `qabot train` prints it before training and refuses
(exit code 2) a set it cannot make a useful model from; the bot's /retrain receives the same
report from the training worker (see bot/retraining.py).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from model.chinese import has_chinese
from model.datasets import QAPair, answer_key, short_text
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


# The report's words in English, keyed by part; a finding's sentence is keyed by its code, or
# code.part where a code has several sentences. A front end may pass the same keys in another
# language (bot/messages.py: the catalog's data_<key> entries, whose English are these).
# Placeholders: {count}, {total} and {limit} are numbers; {questions} and {answers} quoted
# lists of texts; {texts} quoted alternatives; {question} one quoted text; {count_questions}
# and {count_answers} the count with its noun (the n_questions / n_answers entries).
WORDS: dict[str, str] = {
    "head": "data: {questions}, {answers}, {out_of_scope}",
    "n_questions.one": "{n} question",
    "n_questions.other": "{n} questions",
    "n_answers.one": "{n} answer",
    "n_answers.other": "{n} answers",
    "n_out_of_scope.one": "{n} out-of-scope question",
    "n_out_of_scope.other": "{n} out-of-scope questions",
    ERROR: "error",
    WARNING: "warning",
    "finding": "{severity}: {message}",
    "list_separator": ", ",
    "and_more": " and {n} more",
    "alternatives_separator": " / ",
    f"{TOO_FEW_ANSWERS}.no_questions": "the data has no questions. Add questions with at least "
    "two different answers (a few wordings each), then train again.",
    f"{TOO_FEW_ANSWERS}.all_out_of_scope": "every question has an empty answer (out of scope): "
    "there is nothing to answer. Add questions with at least two different answers (a few "
    "wordings each), then train again.",
    f"{TOO_FEW_ANSWERS}.single_answer": "the data has a single answer: a bot that knows one "
    "answer gives it to every question. Add questions with at least two different answers (a "
    "few wordings each), then train again.",
    SINGLE_WORDING: "{count} of {total} answers have a single question ({questions}): the bot "
    "recognises them only when asked almost word for word. Add two or three other ways of "
    "asking each.",
    CONFLICTING_QUESTION: "the question “{question}” has {count} different answers: the bot "
    "can learn only one. Keep the right one, or reword the questions so they differ.",
    f"{CONFLICTING_QUESTION}.with_out_of_scope": "the question “{question}” has {count} "
    "different answers (one of them out of scope): the bot can learn only one. Keep the right "
    "one, or reword the questions so they differ.",
    NEAR_DUPLICATE_ANSWERS: "{count} answers are nearly the same text ({texts}; asked as "
    "{questions}): the bot splits their questions between them and hesitates. Use one answer "
    "text for all of them.",
    SHORT_ENTRY: "{count_questions} with fewer than {limit} letters or digits ({questions}): "
    "too little to learn from. Write them as a user would ask.",
    f"{LONG_ENTRY}.questions": "{count_questions} longer than {limit} characters ({questions}): "
    "the words that matter drown in the rest. Keep the question itself and move the "
    "explanation into the answer.",
    f"{LONG_ENTRY}.answers": "{count_answers} longer than {limit} characters ({answers}): the "
    "bot cuts it there, as Telegram takes no longer messages. Shorten it or link to a page.",
}


@dataclass(frozen=True)
class Finding:
    """One problem of the data: rows are 1-based positions among the pairs checked (the line of
    a one-file CSV is row + 1), answers are answer ids (model.datasets.answer_key).

    `message` is the sentence in English (stable for scripts, like the code); `part` and
    `values` (what the sentence is made of) say it again in other words (`text`). Reports
    saved before findings had values have None: their English message is all there is."""

    code: str
    severity: str
    message: str
    rows: tuple[int, ...] = ()
    answers: tuple[str, ...] = ()
    part: str = ""
    values: dict[str, Any] | None = None

    def text(self, words: Mapping[str, str] = WORDS) -> str:
        """The finding's sentence in these words (its English message when they lack it: a
        report of an older or newer version)."""
        if self.values is None or _template_key(self.code, self.part) not in words:
            return self.message
        return _sentence(self.code, self.part, self.values, words)


def _finding(
    code: str,
    severity: str,
    values: dict[str, Any],
    part: str = "",
    rows: Sequence[int] = (),
    answers: Sequence[str] = (),
) -> Finding:
    message = _sentence(code, part, values, WORDS)
    return Finding(code, severity, message, tuple(rows), tuple(answers), part, values)


def _sentence(code: str, part: str, values: Mapping[str, Any], words: Mapping[str, str]) -> str:
    shown: dict[str, object] = {}
    for name, value in values.items():
        if isinstance(value, dict):  # {"texts": [...], "more": n}: an enumeration
            shown[name] = _enumeration(value["texts"], value["more"], words)
        elif isinstance(value, list):  # alternatives
            shown[name] = words["alternatives_separator"].join(f"“{t}”" for t in value)
        else:
            shown[name] = value
    if "count" in values:
        shown["count_questions"] = _counted(values["count"], "n_questions", words)
        shown["count_answers"] = _counted(values["count"], "n_answers", words)
    return words[_template_key(code, part)].format(**shown)


def _template_key(code: str, part: str) -> str:
    return f"{code}.{part}" if part else code


def _enumeration(texts: Sequence[str], more: int, words: Mapping[str, str]) -> str:
    listed = words["list_separator"].join(f"“{text}”" for text in texts)
    return listed + (words["and_more"].format(n=f"{more:,}") if more > 0 else "")


def _counted(n: int, noun: str, words: Mapping[str, str]) -> str:
    """`1 question`, `2 questions`: a language without plurals gives both keys alike."""
    return words[f"{noun}.{'one' if n == 1 else 'other'}"].format(n=f"{n:,}")


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
            Finding(
                f["code"],
                f["severity"],
                f["message"],
                tuple(f["rows"]),
                tuple(f["answers"]),
                f.get("part", ""),
                f.get("values"),
            )
            for f in data.get("findings", ())
        )
        return cls(data["n_pairs"], data["n_answers"], data["n_out_of_scope"], findings)

    def lines(self, words: Mapping[str, str] | None = None) -> list[str]:
        """The report in plain sentences, errors first: in English, or in the words given
        (the keys of WORDS)."""
        words = WORDS if words is None else words
        head = words["head"].format(
            questions=_counted(self.n_pairs, "n_questions", words),
            answers=_counted(self.n_answers, "n_answers", words),
            out_of_scope=_counted(self.n_out_of_scope, "n_out_of_scope", words),
        )
        ordered = sorted(self.findings, key=lambda f: f.severity != ERROR)
        return [
            head,
            *(
                words["finding"].format(
                    severity=words.get(f.severity, f.severity), message=f.text(words)
                )
                for f in ordered
            ),
        ]


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


def _shown(texts: Sequence[str]) -> dict[str, Any]:
    """The first texts of a list that may be long, shortened, and how many more there are."""
    return {
        "texts": [short_text(t) for t in texts[:SHOWN_QUESTIONS]],
        "more": max(len(texts) - SHOWN_QUESTIONS, 0),
    }


def _quoted(rows: Sequence[int], pairs: Sequence[QAPair]) -> dict[str, Any]:
    """The questions of rows, as an admin finds them in the file or in /pairs: rows alone do
    not lead to them (a spreadsheet's row numbers count the header, /retrain's set has none)."""
    return _shown([pairs[row - 1].question for row in rows])


def _too_few_answers(n_answers: int, n_pairs: int) -> list[Finding]:
    if n_answers >= 2:
        return []
    if n_pairs == 0:
        part = "no_questions"
    elif n_answers == 0:
        part = "all_out_of_scope"
    else:
        part = "single_answer"
    return [_finding(TOO_FEW_ANSWERS, ERROR, {}, part)]


def _single_wordings(
    rows_by_answer: dict[str, list[int]], pairs: Sequence[QAPair]
) -> list[Finding]:
    single = {key: rows[0] for key, rows in rows_by_answer.items() if len(rows) == 1}
    if not single or len(rows_by_answer) < 2:
        return []
    rows = sorted(single.values())
    values = {"count": len(single), "total": len(rows_by_answer), "questions": _quoted(rows, pairs)}
    answers = sorted(single, key=single.__getitem__)
    return [_finding(SINGLE_WORDING, WARNING, values, rows=rows, answers=answers)]


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
        values = {"question": short_text(pairs[rows[0] - 1].question), "count": len(targets)}
        findings.append(
            _finding(
                CONFLICTING_QUESTION,
                WARNING,
                values,
                "with_out_of_scope" if "" in targets else "",
                rows,
                [key for key in targets if key],
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
        values = {
            "count": len(group),
            "texts": _where_they_differ([text_of[key] for key in group[:3]]),
            "questions": _quoted([rows_by_answer[key][0] for key in group], pairs),
        }
        rows = sorted(r for key in group for r in rows_by_answer[key])
        findings.append(_finding(NEAR_DUPLICATE_ANSWERS, WARNING, values, rows=rows, answers=group))
    return findings


def _where_they_differ(texts: list[str], context: int = 15) -> list[str]:
    """Texts cut short from a little before their first difference: near duplicates mostly
    differ late ("10:00–18:00" and "10:00-18:00"), and their first 40 characters look alike."""
    common = len(os.path.commonprefix(texts))
    start = common - context if common > 40 - context else 0
    return [("…" if start else "") + short_text(text[start:]) for text in texts]


def _too_short(question: str) -> bool:
    """Fewer than MIN_QUESTION_CHARS letters or digits; a Chinese character is a word of its
    own ("嗨", "hi"), enough alone."""
    key = match_key(question)
    return len(key) < MIN_QUESTION_CHARS and not has_chinese(key)


def _entry_lengths(pairs: Sequence[QAPair]) -> list[Finding]:
    short = [r for r, p in enumerate(pairs, 1) if _too_short(p.question)]
    long_questions = [r for r, p in enumerate(pairs, 1) if len(p.question) > MAX_QUESTION_CHARS]
    long_answers = [r for r, p in enumerate(pairs, 1) if len(p.answer) > MAX_ANSWER_CHARS]
    findings = []
    if short:
        values = {
            "count": len(short),
            "limit": MIN_QUESTION_CHARS,
            "questions": _quoted(short, pairs),
        }
        findings.append(_finding(SHORT_ENTRY, WARNING, values, rows=short))
    if long_questions:
        values = {
            "count": len(long_questions),
            "limit": MAX_QUESTION_CHARS,
            "questions": _quoted(long_questions, pairs),
        }
        findings.append(_finding(LONG_ENTRY, WARNING, values, "questions", long_questions))
    if long_answers:
        # One finding per text, not per question: an answer asked five ways is one answer.
        first_rows = sorted({pairs[row - 1].answer: row for row in reversed(long_answers)}.values())
        values = {
            "count": len(first_rows),
            "limit": MAX_ANSWER_CHARS,
            "answers": _shown([pairs[row - 1].answer for row in first_rows]),
        }
        findings.append(_finding(LONG_ENTRY, WARNING, values, "answers", long_answers))
    return findings
