"""The `qabot` command line, run in-process on a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app.app import BUNDLED_PAIRS, BUNDLED_PARAPHRASES
from bot.cli import main
from tests.conftest import ADMIN_ID


@pytest.fixture
def qabot_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.setenv("QABOT_ADMIN_IDS", str(ADMIN_ID))
    for name in ("QABOT_DATABASE_URL", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return home


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_db_upgrade_creates_the_database(qabot_home: Path) -> None:
    assert main(["db", "upgrade"]) == 0
    assert (qabot_home / "qabot.sqlite3").exists()


def test_import_then_export_pairs(qabot_home: Path, tmp_path: Path, capsys) -> None:
    data = write(
        tmp_path / "pairs.csv", 'question,answer\n你好,你好！\n"a, b?","yes, ""quoted"""\nspam,\n'
    )
    jsonl = write(tmp_path / "more.jsonl", '{"question": "hi", "answer": "hello"}\n')
    assert main(["import", str(data)]) == 0
    assert main(["import", str(data)]) == 0  # the same file again adds nothing
    assert main(["import", str(jsonl)]) == 0
    err = capsys.readouterr().err
    assert "imported 0 new Q&A pairs" in err
    assert "(3 already in the training set or repeated in the file)" in err
    out = tmp_path / "out.csv"
    assert main(["export", "--pairs", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [(r["question"], r["answer"]) for r in rows] == [
        ("你好", "你好！"), ("a, b?", 'yes, "quoted"'), ("spam", ""), ("hi", "hello"),
    ]  # fmt: skip


def load_bundled_pairs() -> None:
    """What `qabot run` does to an empty store before it trains the first model."""
    from bot.cli import opened_app
    from bot.startup import load_settings
    from bot.storage.store import BUNDLED
    from model.datasets import read_pairs

    async def load() -> None:
        async with opened_app(load_settings()) as app:
            await app.store.add_pairs(read_pairs(BUNDLED_PAIRS), source=BUNDLED)

    assert main(["db", "upgrade"]) == 0
    asyncio.run(load())


def exported_pairs(tmp_path: Path) -> list[tuple[str, str]]:
    out = tmp_path / "exported.csv"
    assert main(["export", "--pairs", "--out", str(out)]) == 0
    return [(r["question"], r["answer"]) for r in csv.DictReader(out.open(encoding="utf-8"))]


def test_the_first_import_replaces_the_bundled_examples(
    qabot_home: Path, tmp_path: Path, capsys
) -> None:
    """The README's order (`make run`, then import one's FAQ) gave a training set of the FAQ
    and the 658 bundled pairs: the bot answered "who are you" with qabot's own introduction,
    and the data report listed problems of rows the admin never wrote."""
    load_bundled_pairs()
    faq = write(tmp_path / "faq.csv", "question,answer\nwifi?,Ask at the desk.\nhi,Hello!\n")
    assert main(["import", str(faq)]) == 0
    assert "removed the 658 bundled example pairs" in capsys.readouterr().err
    assert exported_pairs(tmp_path) == [("wifi?", "Ask at the desk."), ("hi", "Hello!")]
    # The admin's own pairs stay when more files come.
    more = write(tmp_path / "more.csv", "question,answer\nparking?,Garage B.\n")
    assert main(["import", str(more)]) == 0
    assert "bundled" not in capsys.readouterr().err
    assert len(exported_pairs(tmp_path)) == 3


def test_an_import_can_keep_the_bundled_examples(qabot_home: Path, tmp_path: Path) -> None:
    load_bundled_pairs()
    faq = write(tmp_path / "faq.csv", "question,answer\nwifi?,Ask at the desk.\n")
    assert main(["import", "--keep-bundled", str(faq)]) == 0
    assert len(exported_pairs(tmp_path)) == 659


def test_a_refused_file_keeps_the_bundled_examples(qabot_home: Path, tmp_path: Path) -> None:
    load_bundled_pairs()
    assert main(["import", str(write(tmp_path / "faq.csv", "question,answer\n"))]) == 2
    assert len(exported_pairs(tmp_path)) == 658


def test_train_on_an_empty_training_set_says_what_to_do(qabot_home: Path, capsys) -> None:
    assert main(["db", "upgrade"]) == 0
    assert main(["train"]) == 2
    assert "import a Q&A file first (qabot import F)" in capsys.readouterr().err


@pytest.mark.slow
async def test_training_on_a_new_faq_says_the_gate_had_nothing_to_compare(
    qabot_home: Path, tmp_path: Path, app, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first import replaced the bundled pairs, `qabot train` printed "gate:
    candidate 0.0% vs live 0.0% right on the same 0 questions ...: not significantly worse
    (exact paired test, p = 1 ...)"."""
    monkeypatch.setenv("QABOT_DATABASE_URL", app.store.engine.url.render_as_string(False))
    faq = "".join(
        f"{how} {topic}?,All about {topic}.\n"
        for topic in ("parking", "wifi", "opening hours")
        for how in ("what about", "tell me about", "question on", "info on")
    )
    data = write(tmp_path / "faq.csv", "question,answer\n" + faq)
    assert await asyncio.to_thread(main, ["import", str(data)]) == 0
    assert await asyncio.to_thread(main, ["train"]) == 0
    out = capsys.readouterr().out
    assert "gate: not compared (no question that both versions held out or users rated" in out
    assert await asyncio.to_thread(main, ["models"]) == 0
    assert "; gate: not compared" in capsys.readouterr().out.splitlines()[0]


def test_import_refuses_malformed_files(qabot_home: Path, tmp_path: Path, capsys) -> None:
    bad = write(tmp_path / "bad.csv", "q;a\nfoo;bar\n")
    assert main(["import", str(bad)]) == 2
    assert "cannot import" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.csv")]) == 2
    assert capsys.readouterr().err.strip().endswith("missing.csv: no such file or directory")


FAQ_PAIRS = [
    ("停车多少钱", "停车每小时 10 元。"),
    ("wifi, password?", 'Ask at the desk, "please".'),
]


def faq_text(delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerows([("question", "answer"), *FAQ_PAIRS])
    return out.getvalue()


# What an admin's spreadsheet or editor saves, and the one line each gets when it cannot be read.
ADMIN_FILES: dict[str, tuple[bytes, str]] = {
    "empty.csv": (b"", "empty file, expected a header 'question,answer'"),
    "header-only.csv": (b"question,answer\n", "no questions under the header question,answer"),
    "columns.csv": (b"Frage,Antwort\nwo,hier\n", "must be the header question,answer (found: Fr"),
    "no-header.csv": (b"wifi?,Ask at the desk.\n", "(found: wifi?, Ask at the desk.)"),
    "gbk.csv": (faq_text().encode("gbk"), "GBK (GB18030) text, as Chinese Windows saves CSV"),
    "workbook.csv": (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb1", "an Excel workbook"),
    "old.csv": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "an old Excel (.xls) workbook"),
    "latin1.csv": ("question,answer\ncafé?,oui\n".encode("latin-1"), "not UTF-8 text (byte 19"),
    "faq.xlsx": (b"PK\x03\x04", "a spreadsheet; save it as “CSV UTF-8”"),
    "array.json": (json.dumps([{"question": "q", "answer": "a"}]).encode(), "a JSON array; Q&A "),
    "empty.jsonl": (b"\n", "empty file, expected one JSON object per line"),
    "tag.csv": (b"question,answer\nmail?,To <name>@x.org\n", "write &lt; for a < that is text"),
}


@pytest.mark.parametrize("name", ADMIN_FILES)
@pytest.mark.parametrize("command", ["import", "train"])
def test_files_that_cannot_be_read_are_refused_in_one_line_with_code_2(
    qabot_home: Path, tmp_path: Path, capsys, name: str, command: str
) -> None:
    content, expected = ADMIN_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    models = tmp_path / "models"
    train = ["train", "--data", str(path), "--model-dir", str(models)]
    assert main(["import", str(path)] if command == "import" else train) == 2
    error = capsys.readouterr().err.strip()
    assert f"{name}" in error and expected in error, error
    assert len(error.splitlines()) == 1 and "Traceback" not in error
    assert not models.exists()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.csv", faq_text().encode("utf-8-sig")),
        ("utf16.csv", faq_text().encode("utf-16")),  # with its byte-order mark
        ("semicolons.csv", faq_text(";").encode()),  # Excel in many European locales
        ("tabs.csv", faq_text("\t").encode("utf-16")),  # Excel's "Unicode text"
    ],
)
def test_files_spreadsheets_save_are_imported(
    qabot_home: Path, tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["import", str(path)]) == 0
    out = tmp_path / "pairs.csv"
    assert main(["export", "--pairs", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert [(r["question"], r["answer"]) for r in rows] == FAQ_PAIRS


async def test_export_conversations(
    qabot_home: Path, tmp_path: Path, app, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.storage.store import ChatInfo, UserInfo

    url = app.store.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("QABOT_DATABASE_URL", url)  # the database `app` logs into

    await app.answering.reply(ChatInfo(5), UserInfo(6), "你好")
    await app.answering.reply(ChatInfo(5), UserInfo(6), "zzzz qqqq")
    await app.writer.flush()

    for fmt in ("csv", "jsonl"):
        out = tmp_path / f"log.{fmt}"
        code = await asyncio.to_thread(main, ["export", "--format", fmt, "--out", str(out)])
        assert code == 0
        text = out.read_text(encoding="utf-8")
        if fmt == "csv":
            rows = list(csv.DictReader(text.splitlines()))
        else:
            rows = [json.loads(line) for line in text.splitlines()]
        assert [r["question"] for r in rows] == ["你好", "zzzz qqqq"]
        assert str(rows[0]["user_id"]) == "6"
    out = tmp_path / "future.csv"
    await asyncio.to_thread(main, ["export", "--since", "2999-01-01", "--out", str(out)])
    assert out.read_text(encoding="utf-8").count("\n") == 1  # the header only


def test_eval_json_reports_the_current_model(
    qabot_home: Path, seed_model_dir: Path, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model import evaluate

    # Its speed figures from fewer timed questions (5,500 a run took about a second of CPU).
    monkeypatch.setattr(evaluate, "LATENCY_SAMPLES", 50)
    monkeypatch.setattr(evaluate, "THROUGHPUT_BATCH", 100)
    monkeypatch.setattr(evaluate, "THROUGHPUT_RUNS", 2)
    shutil.copytree(seed_model_dir, qabot_home / "models")
    data = BUNDLED_PARAPHRASES
    assert main(["eval", "--data", str(data), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert {"in_scope_accuracy", "oos_recall", "threshold", "n", "latency_ms"} <= set(figures)
    assert figures["n"] == 75 and figures["in_scope_accuracy"] > 0.7
    # "Did you mean": never below the answers given, and a share of the in-scope questions.
    assert figures["in_scope_accuracy"] <= figures["answered_or_suggested"] <= 1.0
    assert 0.0 <= figures["suggested_rate"] <= 1.0
    assert main(["eval", "--data", str(data)]) == 0
    shown = capsys.readouterr()
    assert "in-scope accuracy" in shown.out
    assert "right answer given or among the suggestions" in shown.out
    assert "warning" not in shown.err


def test_eval_warns_of_answers_the_model_does_not_know(
    qabot_home: Path, seed_model_dir: Path, tmp_path: Path, capsys
) -> None:
    """A test file written with its own short answers scored "in-scope accuracy 0.0%" and said
    nothing more: no question can be answered right with an answer the model does not have."""
    shutil.copytree(seed_model_dir, qabot_home / "models")
    data = write(tmp_path / "test.csv", "question,answer\nhi there,Hi!\nhey,Hi!\nbye now,Bye\n")
    assert main(["eval", "--data", str(data)]) == 0
    captured = capsys.readouterr()
    assert "in-scope accuracy 0.0%" in captured.out
    warning = captured.err.strip()
    assert warning.startswith("warning: 2 answers of the file are not answers of model ")
    assert "(“Hi!”, “Bye”): their questions count as answered wrong" in warning


def test_bad_arguments_are_refused(qabot_home: Path) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--since", "yesterday"])
    with pytest.raises(SystemExit):
        main(["frobnicate"])


CHATTERBOT_CORPUS = """\
categories:
- greetings
conversations:
- - Hello
  - Hi there!
- - How are you doing?
  - I am doing well.
  - That is good to hear.
- - 你好
  - 你好！
"""


def test_chatterbot_yaml_import_and_round_trip(
    qabot_home: Path, tmp_path: Path, monkeypatch
) -> None:
    corpus = write(tmp_path / "greetings.yml", CHATTERBOT_CORPUS)
    assert main(["import", str(corpus)]) == 0
    exported = tmp_path / "pairs.csv"
    assert main(["export", "--pairs", "--out", str(exported)]) == 0
    rows = list(csv.DictReader(exported.open(encoding="utf-8", newline="")))
    assert [(r["question"], r["answer"]) for r in rows] == [
        ("Hello", "Hi there!"),
        ("How are you doing?", "I am doing well."),
        ("I am doing well.", "That is good to hear."),
        ("你好", "你好！"),
    ]
    # Exporting the training set and importing it into an empty store reproduces it.
    monkeypatch.setenv("QABOT_HOME", str(tmp_path / "other-home"))
    assert main(["import", str(exported)]) == 0
    again = tmp_path / "again.csv"
    assert main(["export", "--pairs", "--out", str(again)]) == 0
    assert again.read_bytes() == exported.read_bytes()


def test_malformed_yaml_is_refused(qabot_home: Path, tmp_path: Path, capsys) -> None:
    assert main(["import", str(write(tmp_path / "bad.yml", "conversations: [[a, b], 3]\n"))]) == 2
    assert "conversation 2" in capsys.readouterr().err


async def test_models_review_and_rollback_commands(
    qabot_home: Path, app, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.storage.store import ChatInfo, UserInfo

    monkeypatch.setenv("QABOT_DATABASE_URL", app.store.engine.url.render_as_string(False))
    await app.answering.reply(ChatInfo(5), UserInfo(6), "帮我订一张去上海的机票")
    await app.writer.flush()
    assert await asyncio.to_thread(main, ["review"]) == 0
    assert "帮我订一张去上海的机票" in capsys.readouterr().out

    assert await asyncio.to_thread(main, ["models"]) == 0
    live = app.models.registry.current_version()
    listing = capsys.readouterr().out
    assert f"* {live}" in listing
    # The figures are named, and so is the data they were measured on.
    assert "in-scope accuracy" in listing and "out-of-scope recall" in listing
    assert "held-out questions" in listing or "cross-validated" in listing
    assert (
        await asyncio.to_thread(main, ["rollback"]) == 1
    )  # only one version: nothing to go back to
    assert "cannot roll back" in capsys.readouterr().err


async def test_review_escapes_control_characters_from_users(
    qabot_home: Path, app, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.factories import record

    monkeypatch.setenv("QABOT_DATABASE_URL", app.store.engine.url.render_as_string(False))
    hostile = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\rover\nline 2"
    await app.store.log_exchanges([record(question=hostile, fallback=True, confidence=0.0)])
    assert await asyncio.to_thread(main, ["review"]) == 0
    out = capsys.readouterr().out
    assert not any(ch in out for ch in "\x1b\x07\r")
    assert "\\x1b[31mred\\rover\\nline 2" in out and len(out.splitlines()) == 1


def alias_bomb(levels: int) -> str:
    """A ChatterBot corpus of a few hundred bytes whose aliases expand to 10**levels statements."""
    lines = ["a0: &a0 [ha, he, hi, ho, hu, ya, ye, yi, yo, yu]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join([*lines, f"conversations: [*a{levels - 1}]", ""])


MALFORMED = {
    "bomb.yml": (alias_bomb(5), "line 2: invalid YAML (aliases"),
    "unclosed.yml": ("conversations:\n- - a\n  - b\n- [c, d\n", "line 5: invalid YAML"),
    "nested.yml": ("conversations: " + "[" * 50_000 + "]" * 50_000, "nested too deeply"),
    "nested.jsonl": ('{"question": "q", "answer": "a"}\n' + "[" * 50_000, "line 2: "),
    "long.csv": ("question,answer\n" + "x" * 200_000 + ",y\n", "line 2: malformed CSV"),
    "unclosed.csv": ('question,answer\nq,a\n"un\nclosed', "line 4"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_and_explosive_files_get_one_clear_line(
    qabot_home: Path, tmp_path: Path, capsys, name: str
) -> None:
    content, expected = MALFORMED[name]
    path = write(tmp_path / name, content)
    assert main(["import", str(path)]) == 2
    error = capsys.readouterr().err.strip()
    assert expected in error and error.startswith(f"cannot import {path}: {name}")
    assert len(error.splitlines()) == 1 and "Traceback" not in error


def test_train_refuses_an_alias_bomb_in_one_line(qabot_home: Path, tmp_path: Path, capsys) -> None:
    bomb = write(tmp_path / "bomb.yml", alias_bomb(5))
    assert main(["train", "--data", str(bomb), "--model-dir", str(tmp_path / "models")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("bomb.yml, line 2: invalid YAML (aliases (*name) are not supported)")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


@pytest.mark.slow
def test_train_prints_its_own_lines_only(qabot_home: Path, tmp_path: Path) -> None:
    """TensorFlow's C++ logging wrote lines such as "E0000 00:00:… node_def_util.cc:682]
    NodeDef mentions attribute use_unbounded_threadpool …" four times into `qabot train`'s
    report, which an admin reads for what is wrong with their data."""
    from tests.processes import ROOT

    data = write(tmp_path / "faq.csv", "question,answer\n" + "".join(
        f"question {n} {topic},answer about {topic}\n"
        for topic in ("parking", "wifi", "hours") for n in range(4)
    ))  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "TF_"))}
    env.update(QABOT_HOME=str(qabot_home), PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "bot.cli", "train", "--data", str(data)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    ours = ("data: ", "warning: ", "training ", "epoch ", "note: ")
    assert [line for line in done.stderr.splitlines() if not line.startswith(ours)] == []
    # A model trained on a file, promoted over the bot's: the bot's training set is another.
    assert done.stderr.splitlines()[-1].startswith("note: the bot's training set is unchanged")


def test_training_on_a_file_into_the_bots_models_records_the_version(
    qabot_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`qabot train --data F` promotes in the bot's model folder: the store's model_versions
    record it as live, as `qabot train` and /retrain do."""
    import sqlite3

    import model.train
    from model.registry import ModelRegistry
    from tests.linear_trainer import linear_network

    monkeypatch.setattr(model.train, "_fit_network", linear_network)  # seconds, no Keras
    faq = "".join(
        f"{how} {topic}?,All about {topic}.\n"
        for topic in ("parking", "wifi", "opening hours")
        for how in ("what about", "tell me about", "question on", "info on")
    )
    data = write(tmp_path / "faq.csv", "question,answer\n" + faq)
    assert main(["train", "--data", str(data)]) == 0
    live = ModelRegistry(qabot_home / "models").current_version()
    with contextlib.closing(sqlite3.connect(qabot_home / "qabot.sqlite3")) as database:
        rows = database.execute("select version, promoted_at, metrics from model_versions")
        [(version, promoted_at, metrics)] = rows.fetchall()
    assert version == live and promoted_at is not None
    assert json.loads(metrics)["in_scope_accuracy"] is not None
    assert "warning" not in capsys.readouterr().err
