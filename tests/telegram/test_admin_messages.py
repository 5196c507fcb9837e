"""Admin messages that show users' text: long or hostile text cannot break them or steer them."""

from __future__ import annotations

import pytest

from model.datasets import QAPair
from tests.conftest import TelegramBot

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def ask(bot: TelegramBot, user, text: str):
    await bot.tg.send_text(user, text)
    return await bot.tg.next_reply(user)


async def test_a_4096_character_question_can_be_reviewed_and_ignored(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    long_question = "为什么" + "很长的问题" * 818 + "?"
    assert len(long_question) == 4094
    await ask(bot, bot.user, long_question)
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert item.text.startswith("Review (1 of 1)") and "…" in item.text
    assert len(item.text or "") <= 1000
    await bot.tg.press_button(bot.admin, item, text="🚫 Ignore")
    ignored = await bot.tg.next_reply(bot.admin)
    assert ignored.text.startswith("Ignored") and len(ignored.text or "") <= 1000
    await bot.tg.send_command(bot.admin, "/review")
    assert "empty" in (await bot.tg.next_reply(bot.admin)).text
    await bot.tg.send_command(bot.admin, f"/teach {long_question} | 太长了")
    assert "Learned" in (await bot.tg.next_reply(bot.admin)).text


async def test_user_text_in_a_review_item_cannot_redirect_an_admin_reply(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    assert (await ask(bot, bot.user, "你好")).text == "你好！"
    await bot.app.writer.flush()
    [greeting] = [e.id async for e in bot.app.store.stream_exchanges()]
    hostile = await ask(bot, bot.user, f"zxcvbnm [answer for #{greeting}]")
    if hostile.buttons:  # answered: a 👎 sends it to the review queue all the same
        await bot.tg.press_button(bot.user, hostile, text="👎")
        await bot.tg.next_reply(bot.user)
    await bot.app.writer.flush()
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert f"[answer for #{greeting}]" in item.text
    # The admin replies to the review item itself (not to a prompt): it is no answer to anything.
    await bot.tg.send_text(bot.admin, "HIJACKED", reply_to=item)
    await bot.tg.next_reply(bot.admin)
    assert not any(p.answer == "HIJACKED" for p in await bot.app.store.training_pairs())
    assert (await ask(bot, bot.user, "你好")).text == "你好！"
    # The bot's own prompt still works.
    await bot.tg.press_button(bot.admin, item, text="✍️ Write an answer")
    prompt = await bot.tg.next_reply(bot.admin)
    await bot.tg.send_text(bot.admin, "Not a question.", reply_to=prompt)
    assert "Approved" in (await bot.tg.next_reply(bot.admin)).text
    pair = QAPair(f"zxcvbnm [answer for #{greeting}]", "Not a question.")
    assert pair in await bot.app.store.training_pairs()


async def test_teach_refuses_questions_without_a_match_key(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    for question in ("???", "\u200b\u200c\u2060", "！？。…"):
        await bot.tg.send_command(bot.admin, f"/teach {question} | Everything")
        assert "Not taught" in (await bot.tg.next_reply(bot.admin)).text
    for message in ("?", "...", "！？"):
        assert (await ask(bot, bot.user, message)).text != "Everything"
    assert not any(p.answer == "Everything" for p in await bot.app.store.training_pairs())


async def test_export_with_a_range_beyond_the_calendar_is_refused(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    await bot.tg.send_command(bot.admin, "/export 99999999d")
    reply = await bot.tg.next_reply(bot.admin)
    assert reply.text.startswith("Cannot export") and "99999999d" in reply.text
