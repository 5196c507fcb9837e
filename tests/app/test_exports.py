"""Conversation exports parse with the standard library and carry every field."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from bot.app.app import App
from bot.app.exports import FIELDS, FORMATS, write_exchanges
from bot.storage.store import Store
from model.datasets import QAPair, read_pairs, write_pairs_csv
from tests.factories import record

REQUIRED = {"id", "created_at", "chat_id", "user_id", "question", "answer", "answer_id",
            "confidence", "fallback", "model_version", "latency_ms"}  # fmt: skip


async def fill(store: Store) -> None:
    await store.log_exchanges(
        [
            record(question='他说："你好",\n然后走了', answer="好的"),
            record(question="zzz", answer="Sorry", answer_id=None, fallback=True, confidence=0.1),
        ]
    )


async def test_csv_export(store: Store) -> None:
    await fill(store)
    out = io.StringIO(newline="")
    assert await write_exchanges(store, out, "csv") == 2
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert set(rows[0]) >= REQUIRED and set(rows[0]) == set(FIELDS)
    assert rows[0]["question"] == '他说："你好",\n然后走了'
    assert rows[1]["answer_id"] == "" and rows[1]["fallback"] == "true"
    assert float(rows[1]["confidence"]) == pytest.approx(0.1)
    assert datetime.fromisoformat(rows[0]["created_at"]).utcoffset().total_seconds() == 0


async def test_jsonl_export(store: Store) -> None:
    await fill(store)
    out = io.StringIO()
    await write_exchanges(store, out, "jsonl")
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(rows) == 2 and set(rows[0]) >= REQUIRED
    assert rows[1]["answer_id"] is None and rows[1]["fallback"] is True
    assert rows[0]["chat_id"] == 1 and isinstance(rows[0]["latency_ms"], float)


async def test_unknown_format_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        await write_exchanges(store, io.StringIO(), "xml")


FORMULAS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "'=already"]


async def test_csv_cells_are_never_formulas_and_jsonl_is_untouched(store: Store) -> None:
    await store.log_exchanges(
        [record(chat_id=-100123, question=text, answer=text) for text in FORMULAS]
    )
    out = io.StringIO(newline="")
    await write_exchanges(store, out, "csv")
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    assert [row["question"] for row in rows] == ["'" + text for text in FORMULAS]
    assert {row["chat_id"] for row in rows} == {"-100123"}  # numbers stay numbers
    out = io.StringIO()
    await write_exchanges(store, out, "jsonl")
    assert [json.loads(line)["question"] for line in out.getvalue().splitlines()] == FORMULAS


def test_pairs_csv_neutralises_formulas_and_reads_back_the_same(tmp_path) -> None:
    pairs = [QAPair(f"q {text}", text) for text in FORMULAS] + [QAPair("'quoted'", "fine")]
    path = tmp_path / "pairs.csv"
    write_pairs_csv(pairs, path)
    answers = [row["answer"] for row in csv.DictReader(path.open(encoding="utf-8", newline=""))]
    assert all(answer[0] not in "=+-@\t\r" for answer in answers)
    assert read_pairs(path) == [QAPair(p.question, p.answer.strip()) for p in pairs]


async def test_the_bot_writes_exports_in_a_child_process(app: App, tmp_path: Path) -> None:
    """/export's file: written by another process, the same as written here."""
    await fill(app.store)
    for fmt in FORMATS:
        path = tmp_path / f"exchanges.{fmt}"
        count = await app.exports.write_conversations_file(path, fmt)
        assert app.exports.last_writer_pid not in (None, os.getpid())
        here = io.StringIO(newline="")
        assert count == await write_exchanges(app.store, here, fmt) >= 2
        assert path.open(encoding="utf-8", newline="").read() == here.getvalue()
    with pytest.raises(ValueError, match="unknown export format"):
        await app.exports.write_conversations_file(tmp_path / "x.xml", "xml")
