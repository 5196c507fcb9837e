"""The reply path shared by every front end, on the model trained from the bundled set."""

from __future__ import annotations

from bot.app.app import App
from bot.app.text import clean_question
from bot.storage.store import ChatInfo, UserInfo

CHAT = ChatInfo(7, "private")
USER = UserInfo(7, "ann", "Ann", "zh-hans")


async def logged(app: App) -> list:
    await app.writer.flush()
    return [e async for e in app.store.stream_exchanges()]


async def test_required_bundled_pairs_are_answered_exactly(app: App) -> None:
    expected = {
        "你好": "你好！",
        "你的名字是什么？": "我的名字是 Chatbot。",
        "你喜欢什么样的食物？": "我喜欢吃蘑菇。",
    }
    for question, answer in expected.items():
        reply = await app.answering.reply(CHAT, USER, question)
        assert reply.text == answer and not reply.fallback


async def test_paraphrases_are_answered_by_the_model(app: App) -> None:
    # Not in the training set, so the model (not the exact-match table) answers.
    reply = await app.answering.reply(CHAT, USER, "请问你叫什么名字呀")
    assert reply.text == "我的名字是 Chatbot。"
    assert reply.model_version == app.models.current.version and 0 < reply.confidence < 1


async def test_far_away_questions_get_the_fallback(app: App) -> None:
    for question in ("what is the airspeed velocity of an unladen swallow in km/h",
                     "帮我计算一下二零二五年第三季度的增值税应纳税额"):  # fmt: skip
        reply = await app.answering.reply(CHAT, USER, question)
        assert reply.fallback and reply.answer_id is None, question
    # The fallback speaks the question's language.
    assert "抱歉" in reply.text


async def test_bad_input_is_answered_and_logged(app: App) -> None:
    huge = "why " * 2500
    inputs = ["", "   \n\t ", huge, "😀😀😀", "hel\x00lo\x1b[31m", "\u202e\u200bhi"]
    replies = [await app.answering.reply(CHAT, USER, text) for text in inputs]
    assert all(r.text for r in replies)
    assert replies[0].fallback and replies[1].fallback
    rows = await logged(app)
    assert len(rows) == len(inputs)
    assert rows[2].question == huge  # logged whole, even past Telegram's own limit


async def test_not_text_messages_get_a_hint(app: App) -> None:
    reply = await app.answering.reply_not_text(CHAT, USER, "sticker")
    assert "文字" in reply.text  # the user's Telegram language is Chinese
    [row] = await logged(app)
    assert row.kind == "sticker" and row.fallback


async def test_every_exchange_is_logged_with_its_fields(app: App) -> None:
    reply = await app.answering.reply(CHAT, USER, "你好", message_id=99)
    [row] = await logged(app)
    assert row.id == reply.exchange_id
    assert (row.chat_id, row.user_id, row.message_id) == (7, 7, 99)
    assert (row.question, row.answer, row.answer_id) == ("你好", "你好！", reply.answer_id)
    assert row.model_version == app.models.current.version and row.latency_ms > 0


async def test_taught_pairs_are_answered_at_once(app: App) -> None:
    assert await app.learning.teach("What is the wifi password?", "It is on the fridge.")
    for wording in ("what is the WiFi password", "  What is the wifi password?!  "):
        reply = await app.answering.reply(CHAT, USER, wording)
        assert reply.text == "It is on the fridge." and reply.confidence == 1.0
    assert not await app.learning.teach("What is the wifi password?", "It is on the fridge.")


def test_clean_question_drops_control_characters() -> None:
    assert clean_question("  a\x00b\u200bc\n d \x1b ") == "abc\n d"
    assert clean_question(" 你好\u00a0! ") == "你好\u00a0!"  # not printable, nothing to drop
    assert clean_question(" plain ") == "plain"


async def test_a_broken_current_model_keeps_the_previous_one_serving(app: App) -> None:
    import shutil

    from model.registry import new_version_name

    serving = app.models.current.version
    broken = new_version_name()
    shutil.copytree(app.models.registry.path(serving), app.models.registry.path(broken))
    (app.models.registry.path(broken) / "weights.npz").write_bytes(b"not a model")
    app.models.registry.promote(broken)
    await app.models.reload()
    assert app.models.current.version == serving
    assert (await app.answering.reply(CHAT, USER, "你好")).text == "你好！"
