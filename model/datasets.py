"""Question–answer pairs: the import/export file formats and stable answer ids."""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from model.answer_html import html_error

CSV_FIELDS = ("question", "answer")
# Limits of one Q&A file: far above real training sets (CLINC150 has 23,700 pairs in 1.5 MB),
# far below what would exhaust the memory of a small server.
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PAIRS_PER_FILE = 2_000_000
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). Such
# cells are written with a leading apostrophe, which spreadsheets show as text, and reading a
# CSV file drops it again: apostrophes already before such a character get one more.
_FORMULA_CELL = re.compile(r"'*[=+\-@\t\r]")
# The first bytes of a zip archive (.xlsx, .ods) and of an old Office file (.xls).
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"
_CJK = re.compile(r"[\u4e00-\u9fff]")
# Spreadsheets in many locales separate CSV fields with semicolons; "Unicode text" uses tabs.
_DELIMITERS = (",", ";", "\t")
_SPREADSHEETS = (".xlsx", ".xls", ".ods", ".numbers")


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
    """Read a CSV (`question,answer` header; commas, semicolons or tabs between fields),
    JSON Lines, or ChatterBot corpus YAML file of pairs, chosen by suffix: UTF-8, or UTF-16
    with its byte-order mark. Raises ValueError, one line naming the file and what to do, for
    a file it cannot read (another encoding, a workbook, no pairs, ...)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path)
    if suffix in (".yml", ".yaml"):
        return _read_chatterbot_yaml(path)
    if suffix in _SPREADSHEETS:
        raise ValueError(f"{path.name}: a spreadsheet; save it as “CSV UTF-8” and import that")
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        return _pairs_of_csv_rows(reader, path)
    except csv.Error as error:  # an unclosed quote, a field over the csv module's limit, ...
        raise ValueError(f"{path.name}, line {reader.line_num}: malformed CSV ({error})") from None


def _pairs_of_csv_rows(reader: Any, path: Path) -> list[QAPair]:
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path.name}: empty file, expected a header 'question,answer'")
    columns = [name.strip().lower() for name in header]
    if "question" not in columns or "answer" not in columns:
        found = short_text(", ".join(name.strip() for name in header), 60)
        raise ValueError(
            f"{path.name}, line 1: the first line must be the header question,answer "
            f"(found: {found})"
        )
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
        _check_count(pairs, path, reader.line_num)
    if not pairs:
        raise ValueError(f"{path.name}: no questions under the header question,answer")
    return pairs


def _delimiter(text: str) -> str:
    """The field separator of a CSV text: the first of _DELIMITERS whose split of the first
    line names both columns (a comma when none does)."""
    first_line = text.split("\n", 1)[0]
    for delimiter in _DELIMITERS:
        names = {name.strip().strip('"').lower() for name in first_line.split(delimiter)}
        if {"question", "answer"} <= names:
            return delimiter
    return ","


def short_text(text: str, length: int = 40) -> str:
    """text cut to length characters, the last one an ellipsis when cut (for messages)."""
    return text if len(text) <= length else text[: length - 1] + "…"


def quoted_texts(texts: Sequence[str], shown: int = 3) -> str:
    """`“a”, “b”, “c” and 7 more`: the first texts of a list that may be long, quoted and
    shortened (for messages)."""
    listed = ", ".join(f"“{short_text(text)}”" for text in texts[:shown])
    more = len(texts) - shown
    return listed + (f" and {more:,} more" if more > 0 else "")


def _read_jsonl(path: Path) -> list[QAPair]:
    text = _read_text(path)
    if text.lstrip().startswith("["):
        raise ValueError(
            f"{path.name}: a JSON array; Q&A files are JSON Lines, one "
            '{"question": …, "answer": …} object per line'
        )
    pairs = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path.name}, line {line_number}: invalid JSON ({error.msg})"
            ) from None
        except RecursionError:
            raise ValueError(f"{path.name}, line {line_number}: JSON nested too deeply") from None
        if not isinstance(record, dict) or not isinstance(record.get("question"), str):
            raise ValueError(
                f"{path.name}, line {line_number}: expected an object with a 'question' string"
            )
        answer = record.get("answer") or ""
        if not isinstance(answer, str):
            raise ValueError(f"{path.name}, line {line_number}: 'answer' must be a string")
        pairs.append(_make_pair(record["question"], answer, path, line_number))
        _check_count(pairs, path, line_number)
    if not pairs:
        raise ValueError(f"{path.name}: empty file, expected one JSON object per line")
    return pairs


def _read_chatterbot_yaml(path: Path) -> list[QAPair]:
    """ChatterBot corpus format: `conversations` is a list of statement lists; as ChatterBot's
    own trainer does, each statement is the answer to the one before it. Read as YAML nodes,
    without aliases (a few kilobytes of them can expand to millions of statements), so that
    every statement keeps its text ("yes" stays "yes") and its line number."""
    import yaml

    try:
        document = _yaml_loader()(_read_text(path)).get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f", line {mark.line + 1}" if mark else ""
        problem = error.problem or error.context
        raise ValueError(f"{path.name}{where}: invalid YAML ({problem})") from None
    except yaml.YAMLError as error:
        raise ValueError(f"{path.name}: invalid YAML ({' '.join(str(error).split())})") from None
    except RecursionError:
        raise ValueError(f"{path.name}: YAML nested too deeply") from None
    conversations = None
    if isinstance(document, yaml.MappingNode):
        conversations = next(
            (value for key, value in document.value if key.value == "conversations"), None
        )
    if not isinstance(conversations, yaml.SequenceNode):
        raise ValueError(f"{path.name}: expected a ChatterBot corpus with a 'conversations' list")
    pairs: list[QAPair] = []
    for number, conversation in enumerate(conversations.value, start=1):
        line = conversation.start_mark.line + 1
        if not isinstance(conversation, yaml.SequenceNode) or not all(
            isinstance(s, yaml.ScalarNode) for s in conversation.value
        ):
            raise ValueError(
                f"{path.name}, line {line}: conversation {number} is not a list of statements"
            )
        statements = [s.value.strip() for s in conversation.value]
        for question, answer in zip(statements, statements[1:], strict=False):
            if question and answer:
                pairs.append(QAPair(question, answer))
        _check_count(pairs, path, line)
    return pairs


@functools.cache
def _yaml_loader() -> type:
    """PyYAML's safe loader, refusing aliases (imported on first use: most runs read CSV)."""
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not supported", self.get_event().start_mark
                )
            return super().compose_node(parent, index)

    return NoAliasLoader


def _check_count(pairs: list[QAPair], path: Path, line: int) -> None:
    if len(pairs) > MAX_PAIRS_PER_FILE:
        raise ValueError(
            f"{path.name}, line {line}: more than {MAX_PAIRS_PER_FILE:,} pairs; split the file"
        )


def _make_pair(question: str, answer: str, path: Path, line_number: int) -> QAPair:
    if not question.strip():
        raise ValueError(f"{path.name}, line {line_number}: empty question")
    if (error := html_error(answer)) is not None:  # the bot sends answers as Telegram HTML
        raise ValueError(
            f"{path.name}, line {line_number}: the answer's HTML is malformed: {error}; "
            "write &lt; for a < that is text"
        )
    return QAPair(question=question.strip(), answer=answer.strip())


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(
                f"{path.name}: larger than {MAX_FILE_BYTES // 2**20} MB; split the file"
            )
        data = path.read_bytes()
    except OSError as error:  # no such file, a folder, no permission: said without the errno
        raise ValueError(f"{path.name}: {(error.strerror or str(error)).lower()}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text": UTF-16 that says so in its byte-order mark.
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    try:
        # utf-8-sig drops a byte-order mark written by spreadsheet programs.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path.name}: {_not_text(data, error)}") from None


def _not_text(data: bytes, error: UnicodeDecodeError) -> str:
    """What a file that is not UTF-8 probably is, and what to do about it."""
    save_as = "save it as “CSV UTF-8” (Excel: File → Save As) and try again"
    if data.startswith(_ZIP_MAGIC):
        return f"an Excel workbook (or another zip archive), not a CSV file: {save_as}"
    if data.startswith(_OLE_MAGIC):
        return f"an old Excel (.xls) workbook, not a CSV file: {save_as}"
    try:
        chinese = _CJK.search(data.decode("gb18030")) is not None
    except UnicodeDecodeError:
        chinese = False
    if chinese:
        return f"GBK (GB18030) text, as Chinese Windows saves CSV, not UTF-8: {save_as}"
    return f"not UTF-8 text (byte {error.start} cannot be read): {save_as}"
