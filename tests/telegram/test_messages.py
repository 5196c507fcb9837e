"""The message catalog: every text in English and Chinese, and each user (admins included)
addressed in their language."""

from __future__ import annotations

import re
import string

import pytest

from bot import messages
from bot.telegram.learning import prompt_of
from tests.conftest import ADMIN_ID, TelegramBot


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


@pytest.mark.parametrize("key", sorted(messages.TEXTS))
def test_every_text_has_both_languages_with_the_same_placeholders(key: str) -> None:
    translations = messages.TEXTS[key]
    assert set(translations) == {"en", "zh"}
    assert all(text.strip() for text in translations.values())
    assert placeholders(translations["zh"]) == placeholders(translations["en"])


def test_a_reply_to_a_prompt_is_understood_in_either_language() -> None:
    for lang in ("en", "zh"):
        assert prompt_of(messages.text("prompt_suggestion", lang, id=17)) == ("suggestion", 17)
        assert prompt_of(messages.text("prompt_answer", lang, id=18)) == ("answer", 18)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_chinese_users_and_admins_are_answered_in_chinese(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    # The user's Telegram language is Chinese ("zh-hans"): 👎 thanks and asks in Chinese.
    await bot.tg.send_text(bot.user, "你好")
    answer = await bot.tg.next_reply(bot.user)
    exchange_id = int(answer.buttons[1]["callback_data"].rsplit(":", 1)[1])
    await bot.tg.press_button(bot.user, answer, text="👎")
    thanks = await bot.tg.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert thanks.params["text"] == messages.text("feedback_thanks", "zh")
    prompt = await bot.tg.next_reply(bot.user)
    assert prompt.text == messages.text("prompt_suggestion", "zh", id=exchange_id)
    assert (prompt.reply_markup or {})["input_field_placeholder"] == "正确答案"
    await bot.tg.send_text(bot.user, "你好！", reply_to=prompt)
    assert (await bot.tg.next_reply(bot.user)).text == messages.text("suggestion_thanks", "zh")

    # An admin whose Telegram language is Chinese gets admin replies in Chinese.
    chinese_admin = bot.tg.user(ADMIN_ID, "Ada", username="ada", language_code="zh")
    await bot.tg.send_command(chinese_admin, "/teach 今天星期几 | 星期一")
    taught = await bot.tg.next_reply(chinese_admin)
    assert taught.text == messages.text(
        "teach_learned", "zh", question="“今天星期几”", answer="“星期一”"
    )
    await bot.tg.send_command(chinese_admin, "/models")
    listing = (await bot.tg.next_reply(chinese_admin)).text
    assert "范围内问题准确率" in listing and "in-scope" not in listing
    # Refusals say why in Chinese too.
    refusals = {
        "/teach ??? | 什么都行": "没有学习：问题至少要有一个字母、数字或符号。",
        "/rollback": "无法回滚：没有可以回滚到的更早的模型版本",
        "/export sometime": "无法导出：“sometime”既不是格式，也不是时间范围（7d、24h）或日期",
        "/export 99999999d": "无法导出：99999999d 早于公元 1 年。",
    }
    for command, refusal in refusals.items():
        await bot.tg.send_command(chinese_admin, command)
        assert (await bot.tg.next_reply(chinese_admin)).text.startswith(refusal), command


def test_a_models_figures_read_the_same_in_english_and_are_translated() -> None:
    from model.figures import CROSS_VALIDATION, format_figures

    metrics = {
        "validation": CROSS_VALIDATION,
        "n": 1300,
        "in_scope_accuracy": 0.8,
        "oos_recall": 0.7,
        "answered_or_suggested": 0.9,
        "suggested_rate": 0.05,
    }
    assert format_figures(metrics, messages.figure_words("en")) == format_figures(metrics)
    chinese = format_figures(metrics, messages.figure_words("zh"))
    assert not any(ch.isascii() and ch.isalpha() for ch in chinese), chinese
    assert all(figure in chinese for figure in ("80.0%", "70.0%", "90.0%", "5.0%", "1,300"))


def test_why_a_question_is_reviewed_is_said_in_the_admins_language() -> None:
    from collections import Counter

    from bot.app.review_queue import ReviewItem, ReviewReason
    from bot.telegram.learning import _describe

    item = ReviewItem("k", "量子引力是什么", 1, wordings={"k": "量子引力是什么"})
    item.reasons = Counter({reason: 1 for reason in ReviewReason})
    item.count = len(ReviewReason)
    for lang in ("en", "zh"):
        shown = _describe(item, 1, lang)
        for reason in ReviewReason:
            assert f"{messages.text(f'review_reason_{reason.name.lower()}', lang)} ×1" in shown
    chinese = _describe(item, 1, "zh")
    assert not any(reason in chinese for reason in ReviewReason if reason.isascii())


def finding_codes() -> set[str]:
    """The codes model.data_checks defines: its snake_case string constants but the two
    severities (the other constants are numbers and sentences)."""
    from model import data_checks

    return {
        value
        for name, value in vars(data_checks).items()
        if name.isupper()
        and isinstance(value, str)
        and re.fullmatch("[a-z_]+", value)
        and value not in (data_checks.ERROR, data_checks.WARNING)
    }


def test_every_data_finding_has_its_sentences_in_english_and_chinese() -> None:
    from model import data_checks

    codes = finding_codes()
    assert data_checks.SINGLE_WORDING in codes and len(codes) >= 6
    for lang in ("en", "zh"):
        words = messages.data_words(lang)
        assert words.keys() == data_checks.WORDS.keys()
        for code in codes:
            sentences = [words[k] for k in words if k == code or k.startswith(f"{code}.")]
            assert sentences, f"no {lang} sentence for the finding {code}"
            if lang == "zh":
                assert all(re.search("[\u4e00-\u9fff]", s) for s in sentences), sentences
    assert messages.data_words("en") == data_checks.WORDS


def test_a_data_report_reads_in_chinese_and_an_old_one_keeps_its_english_findings() -> None:
    from model.data_checks import DataReport, check_pairs
    from model.datasets import QAPair

    hours, reset = "Open 9 to 5.", "Use the sign-in page."
    pairs = [
        QAPair(question, answer)
        for question, answer in [
            ("when are you open", hours), ("opening hours", hours), ("when are you open?", reset),
            ("reset password", reset), ("?", reset), ("where is the shop", "1 Main Street."),
        ]
    ]  # fmt: skip
    report = check_pairs(pairs)
    chinese = report.lines(messages.data_words("zh"))
    assert chinese[0] == "数据：6 个问题，3 个答案，0 个超出范围的问题"
    assert chinese[1].startswith("警告：3 个答案中有 1 个只有一种问法（“where is the shop”）：")
    assert chinese[2].startswith("警告：问题“when are you open”对应 2 个不同的答案：")
    assert chinese[3].startswith("警告：有 1 个问题少于 2 个字母或数字（“?”）：")
    assert report.lines(messages.data_words("en")) == report.lines()
    # Saved before findings kept their values (a worker of an older version): the findings
    # read as they were written, around them the report is in Chinese.
    saved = report.to_dict()
    for finding in saved["findings"]:
        del finding["values"], finding["part"]
    old = DataReport.from_dict(saved).lines(messages.data_words("zh"))
    assert old[0] == chinese[0]
    assert old[1:] == [f"警告：{f.message}" for f in report.findings]
