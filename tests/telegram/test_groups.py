"""Groups and supergroups, through the real Application against the fake Bot API: the bot
answers when addressed, ignores (and does not log) the rest, and /autoanswer."""

from __future__ import annotations

import asyncio
import functools

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from tests.conftest import TelegramBot
from tests.fake_telegram import SentUpdate

UNKNOWN = "what is the airspeed velocity of an unladen swallow"


class HandledUpdates:
    """Tells when the application has finished with an update: a handler in a group of its
    own runs after the bot's handlers have."""

    def __init__(self, application: Application) -> None:
        self.done: set[int] = set()
        self.changed = asyncio.Condition()
        application.add_handler(TypeHandler(Update, self._mark), group=99)

    async def _mark(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        async with self.changed:
            self.done.add(update.update_id)
            self.changed.notify_all()

    async def wait(self, sent: SentUpdate) -> None:
        async with asyncio.timeout(10), self.changed:
            await self.changed.wait_for(lambda: sent.update_id in self.done)


async def logged_questions(bot: TelegramBot) -> list[str]:
    await bot.app.writer.flush()
    return [e.question async for e in bot.app.store.stream_exchanges()]


async def test_the_bot_answers_in_a_group_only_when_addressed(telegram_bot: TelegramBot) -> None:
    bot, tg = telegram_bot, telegram_bot.tg
    handled = HandledUpdates(bot.application)
    group = tg.group(-100123, "Friends")
    plain = await tg.send_text(bot.user, "你好", chat=group)
    await handled.wait(plain)
    assert tg.replies(group) == []

    mention = await tg.send_text(bot.user, "@qabot_test_bot 你好", chat=group)
    answer = await tg.next_reply(group)
    assert answer.text == "你好！" and answer.reply_to_message_id == mention.message_id
    assert answer.find_button(callback_data="fb:+:1")  # rateable like any answer

    reply = await tg.send_text(bot.user, "你喜欢什么样的食物？", chat=group, reply_to=answer)
    answer = await tg.next_reply(group)
    assert answer.text == "我喜欢吃蘑菇。" and answer.reply_to_message_id == reply.message_id

    asked = await tg.send_command(bot.user, "/ask@qabot_test_bot 你好", chat=group)
    answer = await tg.next_reply(group)
    assert answer.text == "你好！" and answer.reply_to_message_id == asked.message_id
    await tg.send_command(bot.admin, f"/ask {UNKNOWN}", chat=group)
    assert (await tg.next_reply(group)).text.startswith("Sorry, I don't know")

    # The plain message is not in the log, nor is the bot's name in the logged questions.
    assert await logged_questions(bot) == ["你好", "你喜欢什么样的食物？", "你好", UNKNOWN]


async def test_autoanswer_is_for_group_admins(telegram_bot: TelegramBot) -> None:
    bot, tg = telegram_bot, telegram_bot.tg
    handled = HandledUpdates(bot.application)
    group = tg.group(-100456, "Support")
    await tg.send_command(bot.user, "/autoanswer on", chat=group)
    assert "管理员" in (await tg.next_reply(group)).text  # refused, in the member's language
    assert not await bot.app.groups.autoanswer(group.id)
    assert any(
        call.method == "getChatMember" and call.params["user_id"] == bot.user.id
        for call in tg.calls
    )

    owner = tg.user(2002, "Cy", language_code="en")
    tg.set_member_status(group, owner, "creator")
    await tg.send_command(owner, "/autoanswer on", chat=group)
    assert (await tg.next_reply(group)).text.startswith("Automatic answers are on")

    confident = await tg.send_text(bot.user, "你好", chat=group)
    answer = await tg.next_reply(group)
    assert answer.text == "你好！" and answer.reply_to_message_id == confident.message_id
    unknown = await tg.send_text(bot.user, UNKNOWN, chat=group)
    await handled.wait(unknown)
    assert tg.replies(group)[-1] is answer  # silence rather than the fallback
    assert await logged_questions(bot) == ["你好"]

    await tg.send_command(owner, "/autoanswer off", chat=group)
    assert (await tg.next_reply(group)).text.startswith("Automatic answers are off")
    ignored = await tg.send_text(bot.user, "你好", chat=group)
    await handled.wait(ignored)
    assert tg.replies(group)[-1].text.startswith("Automatic answers are off")


async def test_group_members_each_rate_the_same_answer(telegram_bot: TelegramBot) -> None:
    bot, tg = telegram_bot, telegram_bot.tg
    group = tg.group(-100789, "Friends")
    await tg.send_command(bot.user, "/ask 你好", chat=group)
    answer = await tg.next_reply(group)
    exchange_id = answer.buttons[0]["callback_data"].rsplit(":", 1)[1]
    other = tg.user(3003, "Di", language_code="en")
    for member, sign in ((bot.user, "+"), (other, "+"), (bot.user, "-")):
        sent = await tg.press_button(member, answer, f"fb:{sign}:{exchange_id}")
        await tg.wait_for(
            functools.partial(
                lambda call, query_id: (
                    call.method == "answerCallbackQuery"
                    and call.params["callback_query_id"] == query_id
                ),
                query_id=sent.callback_query_id,
            )
        )
        assert tg.message(group, answer.message_id).buttons  # they stay for the others
    figures = await bot.app.learning.records.stats()
    assert figures["ratings"] == {bot.app.models.current.version: {"up": 1, "down": 1}}
