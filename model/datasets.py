"""Question–answer pairs: the import/export file formats and stable answer ids."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CSV_FIELDS = ("question", "answer")
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). Such
# cells are written with a leading apostrophe, which spreadsheets show as text, and reading a
# CSV file drops it again: apostrophes already before such a character get one more.
_FORMULA_CELL = re.compile(r"'*[=+\-@\t\r]")


@dataclass(frozen=True)
class QAPair:
    """One training example; an empty answer marks an out-of-scope question."""

    question: str
    answer: str

    @property
    def out_of_scope(self) -> bool:
        return not self.answer.strip()


def answer_key(answer: str) -> str:
    """Stable short id of an answer text: 12 hex digits of the SHA-1 of its NFC-stripped form."""
    canonical = unicodedata.normalize("NFC", answer).strip()
    return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:12]


def read_pairs(path: Path) -> list[QAPair]:
    """Read a CSV (`question,answer` header), JSON Lines, or ChatterBot corpus YAML file of
    pairs, chosen by suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    if suffix in (".yml", ".yaml"):
        return _read_chatterbot_yaml(path)
    raise ValueError(
        f"{path.name}: unsupported file type {suffix!r} (use .csv, .jsonl or ChatterBot .yml)"
    )


def read_pair_files(paths: Iterable[Path], oos_paths: Iterable[Path] = ()) -> list[QAPair]:
    """Pairs from Q&A files, then from out-of-scope files (`--data` and `--oos` on the command
    lines): everything in an out-of-scope file is out-of-scope, whatever its answer column says."""
    pairs = [pair for path in paths for pair in read_pairs(path)]
    pairs += [QAPair(pair.question, "") for path in oos_paths for pair in read_pairs(path)]
    return pairs


def write_pairs_csv(pairs: Iterable[QAPair], path_or_file: Path | str | IO[str]) -> None:
    """Write pairs in the import format: UTF-8 CSV with a `question,answer` header."""
    if isinstance(path_or_file, str | Path):
        with open(path_or_file, "w", encoding="utf-8", newline="") as handle:
            _write_csv(pairs, handle)
    else:
        _write_csv(pairs, path_or_file)


def csv_cell(text: str) -> str:
    """Text as a CSV cell that no spreadsheet runs as a formula (see `_FORMULA_CELL`)."""
    return "'" + text if _FORMULA_CELL.match(text) else text


def _text_of_csv_cell(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and _FORMULA_CELL.match(cell, 1) else cell


def _write_csv(pairs: Iterable[QAPair], handle: IO[str]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for pair in pairs:
        writer.writerow((csv_cell(pair.question), csv_cell(pair.answer)))


def _read_csv(path: Path) -> list[QAPair]:
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path.name}: empty file, expected a header 'question,answer'")
    columns = [name.strip().lower() for name in header]
    if "question" not in columns or "answer" not in columns:
        raise ValueError(f"{path.name}, line 1: header must name 'question' and 'answer'")
    question_at, answer_at = columns.index("question"), columns.index("answer")
    pairs = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            raise ValueError(
                f"{path.name}, line {reader.line_num}: expected {len(columns)} fields, "
                f"found {len(row)}"
            )
        question, answer = (_text_of_csv_cell(row[at].strip()) for at in (question_at, answer_at))
        pairs.append(_make_pair(question, answer, path, reader.line_num))
    return pairs


def _read_jsonl(path: Path) -> list[QAPair]:
    pairs = []
    for line_number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path.name}, line {line_number}: invalid JSON ({error.msg})"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("question"), str):
            raise ValueError(
                f"{path.name}, line {line_number}: expected an object with a 'question' string"
            )
        answer = record.get("answer") or ""
        if not isinstance(answer, str):
            raise ValueError(f"{path.name}, line {line_number}: 'answer' must be a string")
        pairs.append(_make_pair(record["question"], answer, path, line_number))
    return pairs


def _read_chatterbot_yaml(path: Path) -> list[QAPair]:
    """ChatterBot corpus format: `conversations` is a list of statement lists; as ChatterBot's
    own trainer does, each statement is the answer to the one before it."""
    import yaml

    try:
        document = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as error:
        raise ValueError(f"{path.name}: invalid YAML ({error})") from None
    conversations = document.get("conversations") if isinstance(document, dict) else None
    if not isinstance(conversations, list):
        raise ValueError(f"{path.name}: expected a ChatterBot corpus with a 'conversations' list")
    pairs = []
    for number, conversation in enumerate(conversations, start=1):
        if not isinstance(conversation, list) or not all(
            isinstance(s, str | int | float) for s in conversation
        ):
            raise ValueError(f"{path.name}: conversation {number} is not a list of statements")
        statements = [str(s).strip() for s in conversation]
        for question, answer in zip(statements, statements[1:], strict=False):
            if question and answer:
                pairs.append(QAPair(question, answer))
    return pairs


def _make_pair(question: str, answer: str, path: Path, line_number: int) -> QAPair:
    if not question.strip():
        raise ValueError(f"{path.name}, line {line_number}: empty question")
    return QAPair(question=question.strip(), answer=answer.strip())


def _read_text(path: Path) -> str:
    try:
        # utf-8-sig drops a byte-order mark written by spreadsheet programs.
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path.name}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
