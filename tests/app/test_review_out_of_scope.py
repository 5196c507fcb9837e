"""Marking a review group "out of scope" (questions the bot should not answer), in /review and
in `qabot review`, and the data report /retrain shows."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import messages
from bot.app.app import App
from bot.cli import main
from bot.storage.store import ChatInfo, Store, UserInfo
from bot.storage.tables import QAPairRow
from model.data_checks import check_pairs
from model.datasets import QAPair
from model.text import match_key
from tests.conftest import ADMIN_ID, TelegramBot, bot_on_fake_telegram

# Two wordings /review groups together (none of them in the bundled set).
WIFI_WORDINGS = ["how do I change my wifi password", "how can I change my wifi password?"]
# Questions the bundled model answers (wrongly, with a small-talk answer) rather than falling
# back on: the bundled set has no out-of-scope rows like them.
OPENING_HOURS = ["when are you open", "When are you open?", "what time do you open?"]


async def reviewed_rows(store: Store) -> list[tuple[str, str]]:
    async with store.session() as session:
        rows = await session.execute(
            select(QAPairRow.question, QAPairRow.answer).where(QAPairRow.source == "reviewed")
        )
        return [(question, answer) for question, answer in rows]


@pytest.mark.slow
async def test_out_of_scope_in_review_makes_the_bot_fall_back_after_retrain(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    none_of_these = messages.text("none_of_these", "en")
    for wording in OPENING_HOURS:
        await bot.tg.send_text(bot.user, wording)
        reply = await bot.tg.next_reply(bot.user)
        labels = [button["text"] for button in reply.buttons]
        if "👎" in labels:  # answered: the user says it is wrong, so it is reviewed too
            await bot.tg.press_button(bot.user, reply, text="👎")
            await bot.tg.next_reply(bot.user)  # the prompt for a better answer
        elif none_of_these in labels:  # "did you mean": none of the offered answers
            since = len(bot.tg.calls)
            await bot.tg.press_button(bot.user, reply, text=none_of_these)
            await bot.tg.wait_for(lambda c: c.method == "editMessageText", since=since)

    [group, *others] = await bot.app.learning.review_queue()
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert f"Asked {group.count}×" in item.text and "out of scope" in item.text
    await bot.tg.press_button(bot.admin, item, text="🙅 Out of scope")
    assert "Out of scope" in (await bot.tg.next_reply(bot.admin)).text
    marked = sorted(await reviewed_rows(bot.app.store))
    assert marked == sorted((w, "") for w in group.wordings.values())
    assert [i.question for i in await bot.app.learning.review_queue()] == [
        i.question for i in others
    ]

    retrain_calls = len(bot.tg.calls)
    await bot.tg.send_command(bot.admin, "/retrain force")
    status = await bot.tg.next_reply(bot.admin)
    verdict = await bot.tg.next_reply(bot.admin, timeout=600)
    assert "is live" in verdict.text, verdict.text
    # The data report was shown before training, and stays above the progress line.
    assert status.text.startswith("data: ") and status.text.endswith("Training finished.")
    calls = bot.tg.calls[retrain_calls:]
    edits = [c.params["text"] for c in calls if c.method == "editMessageText"]
    assert edits[0].startswith("data: ") and edits[0].endswith("Training…"), edits

    asked_in_group = [w for w in OPENING_HOURS if match_key(w) in group.wordings]
    assert len(asked_in_group) >= 2
    for wording in asked_in_group:  # the model itself falls back on them now
        assert bot.app.models.current.predict(wording).fallback, wording
        await bot.tg.send_text(bot.user, wording)
        assert (await bot.tg.next_reply(bot.user)).text.startswith("Sorry, I don't know")


async def test_qabot_review_marks_a_group_out_of_scope_as_review_groups_it(
    app: App, home: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.setenv("QABOT_DATABASE_URL", app.store.engine.url.render_as_string(False))
    for question in [*WIFI_WORDINGS, "苹果股价多少"]:
        await app.answering.reply(ChatInfo(5), UserInfo(6), question)
    await app.writer.flush()

    assert await asyncio.to_thread(main, ["review"]) == 0
    listed = [int(n) for n in re.findall(r"^#(\d+) ", capsys.readouterr().out, re.MULTILINE)]
    assert listed == [item.exchange_id for item in await app.learning.review_queue()]
    [wifi] = [item for item in await app.learning.review_queue() if item.count == 2]
    assert set(wifi.wordings.values()) == set(WIFI_WORDINGS)

    argv = ["review", "--out-of-scope", f"#{wifi.exchange_id}"]
    assert await asyncio.to_thread(main, argv) == 0
    output = capsys.readouterr()
    assert "out of scope: " in output.err and f"#{wifi.exchange_id} " not in output.out
    assert sorted(await reviewed_rows(app.store)) == sorted((w, "") for w in WIFI_WORDINGS)
    assert [item.question for item in await app.learning.review_queue()] == ["苹果股价多少"]

    with pytest.raises(SystemExit) as refused:
        main(["review", "--out-of-scope", "#x1"])
    assert refused.value.code == 2 and "not an item id" in capsys.readouterr().err


async def test_retrain_refuses_a_one_answer_set_with_the_report_qabot_train_prints(
    home: Path, store: Store, seed_model_dir: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_answer = [
        QAPair(q, "Open 9 to 5.") for q in ("when are you open", "opening hours", "hours?")
    ]
    await store.add_pairs(one_answer, source="imported")
    async with bot_on_fake_telegram(home, store, seed_model_dir) as bot:
        live = bot.app.models.current.version
        await bot.tg.send_command(bot.admin, "/retrain")
        status = await bot.tg.next_reply(bot.admin)
        refusal = await bot.tg.next_reply(bot.admin, timeout=600)
        assert status.text == "Training refused."
        assert refusal.text.startswith("Training refused: nothing was trained or promoted")
        assert bot.app.models.current.version == live == bot.app.models.registry.current_version()
        assert not bot.app.models.trainer.busy

        # An admin whose Telegram language is Chinese is refused with the report in Chinese.
        chinese_admin = bot.tg.user(ADMIN_ID, "Ada", username="ada", language_code="zh")
        await bot.tg.send_command(chinese_admin, "/retrain")
        chinese_status = await bot.tg.next_reply(chinese_admin)
        chinese = await bot.tg.next_reply(chinese_admin, timeout=600)
        assert chinese_status.text == "训练被拒绝。"
        head, reason = chinese.text.splitlines()[1:3]
        assert head == "数据：3 个问题，1 个答案，0 个超出范围的问题"
        assert reason.startswith("错误：数据里只有一个答案：")
        assert not re.search("[A-Za-z]", reason), reason
        assert bot.app.models.current.version == live

    # `qabot train` on the same store prints the same report, and exits with code 2.
    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.setenv("QABOT_DATABASE_URL", store.engine.url.render_as_string(False))
    monkeypatch.setenv("QABOT_ADMIN_IDS", str(ADMIN_ID))
    assert await asyncio.to_thread(main, ["train"]) == 2
    printed = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith(("data: ", "warning: ", "error: the data"))
    ]
    assert printed[0].startswith("data: ") and "a single answer" in printed[-1]
    assert printed == refusal.text.splitlines()[1 : len(printed) + 1]


async def test_a_chinese_admin_reads_the_data_report_of_retrain_in_chinese(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    bot.app.models.trainer.worker_module = "tests.linear_trainer"
    single = QAPair("where is your shop", "At 1 Main Street, next to the station.")
    await bot.app.store.add_pairs([single], source="imported")
    warnings = [
        line
        for line in check_pairs(await bot.app.store.training_pairs()).lines()
        if line.startswith("warning: ")
    ]
    assert any("a single question" in line for line in warnings), warnings

    chinese_admin = bot.tg.user(ADMIN_ID, "Ada", username="ada", language_code="zh")
    await bot.tg.send_command(chinese_admin, "/retrain force")
    status = await bot.tg.next_reply(chinese_admin)
    verdict = await bot.tg.next_reply(chinese_admin, timeout=600)
    assert "已上线" in verdict.text, verdict.text
    # The report heads the progress message, every line of it in Chinese.
    report = status.text.split("\n\n")[0].splitlines()
    assert report[0].startswith("数据：") and status.text.endswith("训练完成。"), status.text
    assert len(report) == 1 + len(warnings)
    assert all(line.startswith("警告：") for line in report[1:]), report
    [single_wording] = [line for line in report if "只有一种问法" in line]
    assert "“where is your shop”" in single_wording
    assert "single question" not in status.text and "warning" not in status.text
