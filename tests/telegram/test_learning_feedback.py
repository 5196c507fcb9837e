"""Ratings and suggestions cannot be pinned on other people's exchanges: callback data comes from
the client (a modified one can send any), and anyone in a group can reply to a prompt."""

from __future__ import annotations

from bot import messages
from tests.conftest import TelegramBot


async def answered(bot: TelegramBot, user, text: str, chat=None):
    # In a group the question is addressed to the bot (a mention), or it would be ignored.
    await bot.tg.send_text(user, text if chat is None else f"@qabot_test_bot {text}", chat=chat)
    return await bot.tg.next_reply(chat or user)


async def test_a_forged_rating_of_another_chats_answer_is_refused(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    theirs = await answered(bot, bot.admin, "你好")
    their_exchange = theirs.buttons[1]["callback_data"].rsplit(":", 1)[1]
    mine = await answered(bot, bot.user, "你好")
    # A modified client presses a button of its own chat with data naming another exchange.
    mine.reply_markup = {
        "inline_keyboard": [[{"text": "👎", "callback_data": f"fb:-:{their_exchange}"}]]
    }
    await bot.tg.press_button(bot.user, mine, text="👎")
    await bot.tg.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert await bot.app.learning.records.rated_exchanges() == []
    assert [b["text"] for b in theirs.buttons] == ["👍", "👎"]


async def test_only_the_rater_can_suggest_an_answer(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    group = bot.tg.group(-100777, "Friends")
    answer = await answered(bot, bot.user, "你好", chat=group)
    await bot.tg.press_button(bot.user, answer, text="👎")
    prompt = await bot.tg.next_reply(group)
    # Someone else replies to the prompt: taken as a question, not as a suggestion or a rating.
    await bot.tg.send_text(bot.admin, "早上好", chat=group, reply_to=prompt)
    assert (await bot.tg.next_reply(group)).text != messages.text("suggestion_thanks", "zh")
    [rating] = await bot.app.learning.records.rated_exchanges()
    assert rating.rating == -1
    [item] = await bot.app.learning.queues.build()
    assert item.suggestions == []
    # The rater's own reply is taken.
    await bot.tg.send_text(bot.user, "你好呀！", chat=group, reply_to=prompt)
    assert (await bot.tg.next_reply(group)).text == messages.text("suggestion_thanks", "zh")
    [item] = await bot.app.learning.queues.build()
    assert [text for _, text in item.suggestions] == ["你好呀！"]
