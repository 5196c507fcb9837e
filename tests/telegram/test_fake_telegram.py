"""The fake Bot API against the real python-telegram-bot: polling, webhook, buttons, files."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters, Update
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fake_telegram import FakeTelegram, FakeUser, running_application

TOKEN = "123456:fake-telegram-test-token"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TOKEN) as server:
        yield server


@pytest.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    """A bare Bot on the fake server, for API-level checks without handlers."""
    async with Bot(TOKEN, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot") as bot:
        yield bot


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Repeat the user's text."""
    message = update.effective_message
    assert message is not None and message.text is not None  # a text handler's message
    await message.reply_text(message.text)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the user."""
    await update.effective_message.reply_text(f"Hello {update.effective_user.first_name}")


async def edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Acknowledge an edited message."""
    await update.effective_message.reply_text(f"edited: {update.effective_message.text}")


def echo_app(tg: FakeTelegram) -> Application:
    app = tg.application_builder().build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & filters.TEXT, edited))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    return app


async def test_echo_bot_by_polling(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001, first_name="Ann", language_code="zh-hans")
    async with running_application(echo_app(tg), tg):
        sent = await tg.send_text(ann, "你好")
        reply = await tg.next_reply(ann)
        # Digits stay text: form values are only JSON-decoded for non-string parameters.
        await tg.send_text(ann, "123")
        number_reply = await tg.next_reply(ann)

    assert (reply.text, reply.method, reply.chat_id) == ("你好", "sendMessage", ann.id)
    assert reply.message_id == sent.message_id + 1  # one message sequence per chat
    assert number_reply.text == "123"
    assert [call.method for call in tg.calls[:2]] == ["getMe", "deleteWebhook"]
    assert all(call.token == TOKEN and TOKEN not in repr(call) for call in tg.calls)
    # Stopping confirmed every fetched update: nothing would be fetched again.
    assert tg.calls[-1].method == "getUpdates"
    assert tg.calls[-1].params["offset"] > sent.update_id


async def test_updates_sent_before_start_are_fetched_once(tg: FakeTelegram, bot: Bot) -> None:
    ann = tg.user(id=1001)
    await tg.send_text(ann, "early")
    async with running_application(echo_app(tg), tg):
        assert (await tg.next_reply(ann)).text == "early"
    assert await bot.get_updates(timeout=0) == ()


async def test_commands_in_private_and_group_chats(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001, first_name="Ann")
    team = tg.group(id=-100777, title="Team")
    async with running_application(echo_app(tg), tg):
        await tg.send_command(ann, "/start")
        private = await tg.next_reply(ann)
        await tg.send_command(ann, "/start@qabot_test_bot", chat=team)
        in_group = await tg.next_reply(team)

    assert private.text == in_group.text == "Hello Ann"
    assert in_group.chat.type == "supergroup"


async def test_edited_message_reaches_the_bot(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001)
    async with running_application(echo_app(tg), tg):
        original = await tg.send_text(ann, "helo")
        await tg.next_reply(ann)
        await tg.send_edited_text(ann, original, "hello")
        assert (await tg.next_reply(ann)).text == "edited: hello"


async def menu(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Offer two choices as inline buttons."""
    keyboard = [[InlineKeyboardButton("Yes", callback_data="yes")],
                [InlineKeyboardButton("More", callback_data="more")]]  # fmt: skip
    await update.effective_message.reply_text(
        "Pick one", reply_markup=InlineKeyboardMarkup(keyboard)
    )


async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a button press: show more buttons, or record the choice and drop the keyboard."""
    query = update.callback_query
    await query.answer("noted")
    if query.data == "more":
        await query.edit_message_reply_markup(
            InlineKeyboardMarkup([[InlineKeyboardButton("Maybe", callback_data="maybe")]])
        )
    else:
        await query.edit_message_text(f"You chose {query.data}")


async def test_inline_keyboard_round_trip(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001)
    app = tg.application_builder().build()
    app.add_handler(CommandHandler("menu", menu))
    app.add_handler(CallbackQueryHandler(choose))
    async with running_application(app, tg):
        await tg.send_command(ann, "/menu")
        picker = await tg.next_reply(ann)
        assert [button["text"] for button in picker.buttons] == ["Yes", "More"]

        await tg.press_button(ann, picker, "more")
        await tg.wait_for(lambda call: call.method == "editMessageReplyMarkup")
        assert [button["text"] for button in picker.buttons] == ["Maybe"]
        with pytest.raises(LookupError):  # that button is gone now
            await tg.press_button(ann, picker, "yes")

        press = await tg.press_button(ann, picker, text="Maybe")
        await tg.wait_for(lambda call: call.method == "editMessageText")
        answer = await tg.wait_for(
            lambda call: (
                call.method == "answerCallbackQuery"
                and call.params["callback_query_id"] == press.callback_query_id
            )
        )

    assert picker.text == "You chose maybe"
    assert picker.reply_markup is None  # an edit without reply_markup drops the keyboard
    assert picker.edits == 2
    assert answer.ok and answer.params["text"] == "noted"
    assert tg.replies(ann) == [picker]  # edits changed the message, they sent nothing new


async def test_button_press_with_arbitrary_callback_data(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001)
    choices: list[object] = []

    async def remember(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        choices.append(update.callback_query.data)
        await update.callback_query.answer()

    async def offer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        button = InlineKeyboardButton("Rate 5", callback_data=("rate", 5))
        await update.effective_message.reply_text(
            "Rate me", reply_markup=InlineKeyboardMarkup.from_button(button)
        )

    app = tg.application_builder().arbitrary_callback_data(True).build()
    app.add_handler(CommandHandler("rate", offer))
    app.add_handler(CallbackQueryHandler(remember))
    async with running_application(app, tg):
        await tg.send_command(ann, "/rate")
        await tg.press_button(ann, await tg.next_reply(ann), text="Rate 5")
        await tg.wait_for(lambda call: call.method == "answerCallbackQuery")

    assert choices == [("rate", 5)]


async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send a CSV file and a picture."""
    await update.effective_message.reply_document(
        "question,answer\n你好,hi\n".encode(), filename="导出.csv", caption="日志 log"
    )
    await update.effective_message.reply_photo(b"\x89PNG\r\n\x1a\nfake")


async def describe_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Download the user's document and describe it."""
    document = update.effective_message.document
    content = await (await document.get_file()).download_as_bytearray()
    await update.effective_message.reply_text(
        f"{document.file_name} {len(content)} {content.decode()}"
    )


async def test_files_both_ways(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001)
    app = tg.application_builder().build()
    app.add_handler(CommandHandler("export", export))
    app.add_handler(MessageHandler(filters.Document.ALL, describe_document))
    async with running_application(app, tg):
        await tg.send_command(ann, "/export")
        csv_reply = await tg.next_reply(ann)
        photo_reply = await tg.next_reply(ann)
        await tg.send_document(ann, "问题.csv", "q,a\n早,morning\n".encode(), caption="import")
        described = await tg.next_reply(ann)

    assert csv_reply.method == "sendDocument"
    assert csv_reply.document.filename == "导出.csv"
    assert csv_reply.document.content == "question,answer\n你好,hi\n".encode()
    assert csv_reply.document.mime_type == "text/csv"
    assert csv_reply.caption == "日志 log"
    assert photo_reply.photo == b"\x89PNG\r\n\x1a\nfake"
    assert described.text == "问题.csv 16 q,a\n早,morning\n"
    assert len(tg.downloads) == 1


async def name_attachment(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Say what kind of attachment the user sent."""
    attachment = update.effective_message.effective_attachment
    kind = type(attachment[-1] if isinstance(attachment, tuple) else attachment).__name__
    await update.effective_message.reply_text(kind)


async def test_user_media_reaches_the_bot_as_telegram_objects(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001)
    app = tg.application_builder().build()
    app.add_handler(MessageHandler(filters.ATTACHMENT, name_attachment))
    async with running_application(app, tg):
        await tg.send_photo(ann, caption="a view")
        await tg.send_voice(ann)
        await tg.send_sticker(ann, emoji="🎉")
        kinds = [(await tg.next_reply(ann)).text for _ in range(3)]
    assert kinds == ["PhotoSize", "Voice", "Sticker"]


async def test_webhook_mode_checks_the_secret(tg: FakeTelegram) -> None:
    ann = tg.user(id=1001)
    app = echo_app(tg)
    async with running_application(app, tg, mode="webhook", secret_token="s3cret-token"):
        await tg.send_text(ann, "over the webhook")
        reply = await tg.next_reply(ann)
        wrong_secret = await tg.post_to_webhook({"update_id": 999_999}, secret_token="wrong")
        no_secret = await tg.post_to_webhook({"update_id": 999_999}, secret_token=None)
        with pytest.raises(Conflict):
            await app.bot.get_updates()
        info = await app.bot.get_webhook_info()

    set_webhook = next(call for call in tg.calls if call.method == "setWebhook")
    assert set_webhook.params["secret_token"] == "s3cret-token"
    assert tg.webhook_url and tg.webhook_url.endswith("/telegram-webhook")
    assert (info.url, info.pending_update_count) == (tg.webhook_url, 0)
    assert reply.text == "over the webhook"
    assert [delivery.status for delivery in tg.webhook_deliveries][-1] == 200
    assert wrong_secret == no_secret == 403


async def test_wrong_token_is_unauthorized(tg: FakeTelegram) -> None:
    wrong = "999:not-the-token"
    with pytest.raises(InvalidToken):
        async with Bot(wrong, base_url=f"{tg.url}/bot"):
            pass
    assert (tg.calls[-1].method, tg.calls[-1].status) == ("getMe", 401)
    assert tg.calls[-1].token == wrong


async def test_injected_faults_then_recovery(
    tg: FakeTelegram, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without it, PTB 22 warns (deprecation) whenever it builds a RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    ann = tg.user(id=1001)
    tg.fail("sendMessage", status=429, retry_after=3)
    tg.fail("sendMessage", status=500, times=2)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(ann.id, "first")
    assert flood.value.retry_after == dt.timedelta(seconds=3)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(ann.id, "again")
    await bot.send_message(ann.id, "through")

    assert [call.status for call in tg.calls if call.method == "sendMessage"] == [
        429,
        500,
        500,
        200,
    ]
    assert [message.text for message in tg.replies(ann)] == ["through"]


async def test_telegram_rejections_are_mimicked(tg: FakeTelegram, bot: Bot) -> None:
    ann = tg.user(id=1001)
    too_long_data = InlineKeyboardMarkup.from_button(
        InlineKeyboardButton("x", callback_data="d" * 65)
    )
    for bad_call in (
        bot.send_message(555, "nobody is there"),
        bot.send_message(ann.id, "   "),
        bot.send_message(ann.id, "x" * 4097),
        bot.send_message(ann.id, "<b>unclosed", parse_mode="HTML"),
        bot.send_message(ann.id, "line<br>break", parse_mode="HTML"),
        bot.send_message(ann.id, "button", reply_markup=too_long_data),
    ):
        with pytest.raises(BadRequest):
            await bad_call

    sent = await bot.send_message(ann.id, "<b>bold</b> &amp; fine", parse_mode="HTML")
    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_text("<b>bold</b> &amp; fine", ann.id, sent.message_id)
    assert await bot.delete_message(ann.id, sent.message_id)
    with pytest.raises(BadRequest):
        await bot.delete_message(ann.id, sent.message_id)
    assert tg.message(ann, sent.message_id).deleted


async def test_reply_parameters_chat_actions_and_commands(tg: FakeTelegram, bot: Bot) -> None:
    ann = tg.user(id=1001)
    question = await tg.send_text(ann, "question")
    assert question.message_id is not None
    await bot.send_chat_action(ann.id, "typing")
    await bot.send_message(ann.id, "answer", reply_parameters=ReplyParameters(question.message_id))
    await bot.set_my_commands([("start", "Start"), ("help", "Help")], language_code="zh")
    commands = await bot.get_my_commands(language_code="zh")
    with pytest.raises(BadRequest):
        await bot.set_my_commands([("Start", "Capitals are not allowed")])
    await bot.set_chat_menu_button()  # not implemented by the fake: answered `true`, recorded

    assert (await tg.next_reply(ann)).reply_to_message_id == question.message_id
    assert [command.command for command in commands] == ["start", "help"]
    assert tg.bot_commands(language_code="zh")[1] == {"command": "help", "description": "Help"}
    assert [call.method for call in tg.unknown_calls] == ["setChatMenuButton"]


def application_tasks() -> set[asyncio.Task]:
    """Running tasks, except the fake server's handlers of connections the bot just closed."""
    return {
        task
        for task in asyncio.all_tasks()
        if task.get_coro().__qualname__ != "RequestHandler.start"
    }


async def test_running_application_leaves_no_tasks_behind(tg: FakeTelegram) -> None:
    before = application_tasks()
    for mode in ("polling", "webhook"):
        async with running_application(echo_app(tg), tg, mode=mode):
            pass
    assert application_tasks() == before


@pytest.mark.slow
async def test_echo_throughput_50_users_20_messages(tg: FakeTelegram) -> None:
    users = [tg.user(id=2000 + number) for number in range(50)]
    messages_per_user = 20

    async def converse(user: FakeUser) -> list[str | None]:
        replies = []
        for number in range(messages_per_user):
            await tg.send_text(user, f"{user.id}-{number}")
            replies.append((await tg.next_reply(user)).text)
        return replies

    async with running_application(echo_app(tg), tg):
        started = time.perf_counter()
        conversations = await asyncio.gather(*(converse(user) for user in users))
        elapsed = time.perf_counter() - started

    total = len(users) * messages_per_user
    print(f"echo throughput: {total} messages in {elapsed:.2f} s = {total / elapsed:.0f} msgs/s")
    for user, replies in zip(users, conversations, strict=True):
        assert replies == [f"{user.id}-{number}" for number in range(messages_per_user)]
