"""The real python-telegram-bot Application, over HTTP, against the fake Bot API server."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import shutil
from pathlib import Path

import pytest

from bot.storage.store import Store
from tests.conftest import TOKEN, TelegramBot, bot_on_fake_telegram


async def ask(bot: TelegramBot, user, text: str) -> str:
    await bot.tg.send_text(user, text)
    return (await bot.tg.next_reply(user)).text or ""


async def test_start_and_help(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await bot.tg.send_command(bot.admin, "/start")
    assert "Hello, Ada" in (await bot.tg.next_reply(bot.admin)).text
    await bot.tg.send_command(bot.user, "/start")
    assert "你好" in (await bot.tg.next_reply(bot.user)).text  # the user's language is Chinese
    await bot.tg.send_command(bot.admin, "/help")
    assert "/teach" in (await bot.tg.next_reply(bot.admin)).text


async def test_questions_get_answers_or_the_fallback(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    assert await ask(bot, bot.user, "你好") == "你好！"
    assert await ask(bot, bot.user, "你喜欢什么样的食物？") == "我喜欢吃蘑菇。"
    fallback = await ask(bot, bot.admin, "what is the airspeed velocity of an unladen swallow")
    assert fallback.startswith("Sorry, I don't know")


async def test_edited_messages_and_groups_are_answered(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    sent = await bot.tg.send_text(bot.user, "asdfgh")
    await bot.tg.next_reply(bot.user)
    await bot.tg.send_edited_text(bot.user, sent, "你好")
    assert (await bot.tg.next_reply(bot.user)).text == "你好！"
    group = bot.tg.group(-100123, "Friends")
    await bot.tg.send_text(bot.user, "@qabot_test_bot 你好", chat=group)
    assert (await bot.tg.next_reply(group)).text == "你好！"


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice", "document"])
async def test_non_text_messages_get_a_hint_and_are_logged(
    telegram_bot: TelegramBot, kind: str
) -> None:
    bot = telegram_bot
    if kind == "document":
        await bot.tg.send_document(bot.admin, "notes.txt", b"hello")
    else:
        await getattr(bot.tg, f"send_{kind}")(bot.admin)
    assert "text" in (await bot.tg.next_reply(bot.admin)).text
    await bot.app.writer.flush()
    [row] = [e async for e in bot.app.store.stream_exchanges()]
    assert row.kind == kind and row.user_id == bot.admin.id


async def test_long_and_odd_messages_are_answered_and_logged(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    texts = ["x" * 4096, "😀" * 50, "\u200b\u202e", "a\x07b"]
    for text in texts:
        assert await ask(bot, bot.user, text)
    await bot.app.writer.flush()
    assert await bot.app.store.count_exchanges() == len(texts)


async def test_admin_export_sends_the_log(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await ask(bot, bot.user, "你好")
    await ask(bot, bot.user, "量子引力")
    await bot.tg.send_command(bot.admin, "/export")
    document = (await bot.tg.next_reply(bot.admin)).document
    assert document.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(document.content.decode("utf-8"), newline="")))
    assert [r["question"] for r in rows] == ["你好", "量子引力"]
    assert rows[0]["answer"] == "你好！" and rows[0]["user_id"] == str(bot.user.id)
    assert rows[1]["fallback"] == "true" and rows[1]["answer_id"] == ""

    await bot.tg.send_command(bot.admin, "/export jsonl")
    document = (await bot.tg.next_reply(bot.admin)).document
    lines = [json.loads(line) for line in document.content.decode("utf-8").splitlines()]
    assert [r["question"] for r in lines] == ["你好", "量子引力"]
    assert TOKEN not in document.content.decode("utf-8")


ADMIN_COMMANDS = [
    "/export", "/export jsonl 7d", "/retrain", "/retrain force", "/teach a | b", "/review",
    "/models", "/rollback", "/stats", "/pairs",
]  # fmt: skip


@pytest.mark.parametrize("command", ADMIN_COMMANDS)
async def test_admin_commands_are_refused_to_others(
    telegram_bot: TelegramBot, command: str
) -> None:
    bot = telegram_bot
    pairs_before = await bot.app.store.count_pairs()
    version_before = bot.app.models.current.version
    await bot.tg.send_command(bot.user, command)
    reply = await bot.tg.next_reply(bot.user)
    # The refusal is the handler's last act (bot/telegram/common.py, admin_only): nothing can
    # follow it, so the state is checked right away.
    assert "管理员" in reply.text and reply.document is None
    assert await bot.app.store.count_pairs() == pairs_before
    assert bot.app.models.current.version == version_before
    assert not bot.app.models.trainer.busy


@pytest.mark.parametrize("command", ["/export", "/export jsonl", "/pairs", "/review", "/stats"])
async def test_data_commands_answer_admins_in_private_chats_only(
    telegram_bot: TelegramBot, command: str
) -> None:
    bot = telegram_bot
    group = bot.tg.group(-100777, "Team")
    await ask(bot, bot.user, "量子引力")  # a logged question, in the queue and the statistics
    await bot.tg.send_command(bot.admin, command, chat=group)
    refusal = await bot.tg.next_reply(group)
    assert "private chat" in refusal.text
    assert refusal.document is None and refusal.photo is None and not refusal.buttons
    assert "量子引力" not in refusal.text
    # In the private chat the same command works.
    await bot.tg.send_command(bot.admin, command)
    assert "private chat" not in ((await bot.tg.next_reply(bot.admin)).text or "")


async def test_teach_is_answered_at_once(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await bot.tg.send_command(bot.admin, "/teach 门禁密码是多少 | 请向前台询问。")
    assert "Learned" in (await bot.tg.next_reply(bot.admin)).text
    assert await ask(bot, bot.user, "门禁密码是多少？") == "请向前台询问。"
    await bot.tg.send_command(bot.admin, "/teach no separator here")
    assert "Usage" in (await bot.tg.next_reply(bot.admin)).text


async def test_unknown_command(telegram_bot: TelegramBot) -> None:
    await telegram_bot.tg.send_command(telegram_bot.admin, "/frobnicate")
    assert "/help" in (await telegram_bot.tg.next_reply(telegram_bot.admin)).text


async def test_a_failing_handler_apologises_without_leaking_the_token(
    telegram_bot: TelegramBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot = telegram_bot
    bot.tg.fail("sendMessage", status=400, description=f"Bad Request: broken {TOKEN}")
    with caplog.at_level(logging.DEBUG):
        await bot.tg.send_text(bot.admin, "你好")
        apology = await bot.tg.next_reply(bot.admin)
    assert "went wrong" in apology.text
    assert "error while handling an update" in caplog.text


@pytest.mark.slow
async def test_retrain_keeps_answering_other_chats_and_switches_model(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> None:
    async with bot_on_fake_telegram(
        home, seeded_store, seed_model_dir, QABOT_MODEL_PROCESS="1"
    ) as bot:
        await retrain_while_answering(bot)


async def retrain_while_answering(bot: TelegramBot) -> None:
    old_version = bot.app.models.current.version
    await bot.tg.send_command(bot.admin, "/retrain")
    assert "Retraining started" in (await bot.tg.next_reply(bot.admin)).text
    async with asyncio.timeout(5):
        while not bot.app.models.trainer.busy:
            await asyncio.sleep(0.01)
    await bot.tg.send_command(bot.admin, "/retrain")
    assert "already in progress" in (await bot.tg.next_reply(bot.admin)).text
    # While the worker trains, another chat is answered at once.
    answered_while_training = 0
    while bot.app.models.trainer.busy:
        assert await ask(bot, bot.user, "你好") == "你好！"
        answered_while_training += 1
        await asyncio.sleep(0.2)
    assert answered_while_training >= 5
    done = await bot.tg.next_reply(bot.admin, timeout=600)
    assert "is live" in done.text and "in-scope accuracy" in done.text
    assert bot.app.models.current.version != old_version
    assert bot.app.models.registry.current_version() == bot.app.models.current.version
    # The candidate was scored, and the new model answers, in the model process.
    assert not bot.app.models.current.holds_weights
    assert bot.app.models.process is not None
    assert bot.app.models.process.serves(bot.app.models.current.path)


async def test_a_version_promoted_elsewhere_brings_its_training_set_to_exact_matches(
    telegram_bot: TelegramBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qabot import my-faq.csv` and `qabot train` beside a running bot: the bot served the new
    model within seconds, but its exact-match table kept the bundled pairs the import had
    replaced ("你是谁" still got qabot's introduction) and never learned the FAQ's."""
    from model.datasets import QAPair
    from model.registry import ModelRegistry

    bot, wifi = telegram_bot, "The Wi-Fi password is on the card at the front desk."
    assert bot.app.known_answers.lookup("你是谁") is not None  # a bundled pair
    reloaded = asyncio.Event()
    reload = bot.app.known_answers.reload

    async def reload_and_tell(store: Store) -> None:
        await reload(store)
        reloaded.set()

    monkeypatch.setattr(bot.app.known_answers, "reload", reload_and_tell)

    # What the two commands do, in another process: the pairs, then a promoted version.
    faq = [QAPair("what is the harbor hub wifi password", wifi), QAPair("wifi code?", wifi)]
    await bot.app.store.add_pairs_over_bundled(faq, source="imported")
    registry = ModelRegistry(bot.app.settings.models_dir)
    live = registry.path(registry.current_version() or "")
    with registry.new_version() as (version, staging):
        shutil.copytree(live, staging, dirs_exist_ok=True)
        meta = json.loads((staging / "meta.json").read_text(encoding="utf-8"))
        (staging / "meta.json").write_text(json.dumps({**meta, "version": version}))
    registry.promote(version)

    await asyncio.wait_for(reloaded.wait(), timeout=120)
    assert bot.app.models.current is not None and bot.app.models.current.version == version
    assert await ask(bot, bot.user, "What is the Harbor Hub Wi-Fi password?") == wifi
    assert bot.app.known_answers.lookup("你是谁") is None
