"""The learning loop in Telegram: 👍/👎 on answers, suggestions after a 👎, the admin review
queue, and statistics.

Prompts that expect a reply (a suggestion, an admin's new answer) carry their exchange id in
their own text, so a reply is understood by any replica, even after a restart. A prompt is
recognised only when the whole message is one of the bot's prompt templates: messages that
quote users' text (a /review item, an approval) can never pass for one."""

from __future__ import annotations

import html
import json
import logging
import re

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot import messages
from bot.app.charts import draw_stats_chart
from bot.app.learning import LearningLoop
from bot.app.review_queue import ReviewItem, ReviewKind, ReviewReason
from bot.app.text import clean_question
from bot.storage.exchange_writer import ExchangesNotWrittenError
from bot.telegram.common import (
    MAX_CAPTION_CHARS,
    PENDING_WAIT_SECONDS,
    admin_data_private_only,
    admin_only,
    app_of,
    fit_message,
    message_of,
    not_yet_written,
    pressed_message,
    query_data,
    query_of,
    quoted,
    quoted_list,
    sender_of,
    shortened,
    user_info,
    user_lang,
)
from bot.telegram.handoff import offer_after_thumbs_down
from model.answer_html import plain_text

log = logging.getLogger(__name__)

THUMBS_UP, THUMBS_DOWN = "👍", "👎"
BUTTON_TEXT_CHARS = 40
# The message keys of the prompts that ask for a reply, by kind; {id} is the exchange id.
PROMPTS = {"suggestion": "prompt_suggestion", "answer": "prompt_answer"}
# A reply is understood whatever the language the prompt was sent in.
_PROMPT_PATTERNS = [
    (kind, re.compile(re.escape(template).replace(re.escape("{id}"), r"(\d+)")))
    for kind, key in PROMPTS.items()
    for template in messages.TEXTS[key].values()
]


def prompt(kind: str, exchange_id: int | str, lang: str) -> str:
    """The text of a prompt that asks for a reply about the exchange."""
    return messages.text(PROMPTS[kind], lang, id=exchange_id)


def prompt_of(text: str) -> tuple[str, int] | None:
    """(kind, exchange id) when `text` is exactly one of the bot's prompts, else None."""
    for kind, pattern in _PROMPT_PATTERNS:
        if match := pattern.fullmatch(text):
            return kind, int(match[1])
    return None


# The 👍/👎 buttons of an answer, as the Bot API's JSON (filled in with the exchange id): from a
# template they cost a microsecond, while python-telegram-bot's InlineKeyboardMarkup takes
# about 50 µs per answer to build and serialize, a quarter of what logging and answering a
# question costs the bot under load.
_FEEDBACK_KEYBOARD = json.dumps(
    {
        "inline_keyboard": [[
            {"text": THUMBS_UP, "callback_data": "fb:+:%d"},
            {"text": THUMBS_DOWN, "callback_data": "fb:-:%d"},
        ]]
    }
)  # fmt: skip


def feedback_keyboard(exchange_id: int) -> dict[str, str]:
    """The `api_kwargs` of a message that attach the 👍/👎 buttons for the exchange."""
    return {"reply_markup": _FEEDBACK_KEYBOARD % (exchange_id, exchange_id)}


# -- every user -----------------------------------------------------------------------------


async def rate_answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A 👍/👎 press: stored with the exchange, acknowledged, buttons removed."""
    query = query_of(update)
    _, sign, exchange_id = query_data(query).split(":")
    user, chat = update.effective_user, update.effective_chat
    stored = chat is not None and await app_of(context).learning.rate(
        int(exchange_id), user.id if user else None, 1 if sign == "+" else -1, chat_id=chat.id
    )
    lang = user_lang(update)
    await query.answer(messages.text("feedback_thanks" if stored else "answer_unknown", lang))
    # In a group each member rates once, and the buttons stay for the others.
    if pressed_message(query).chat.type == ChatType.PRIVATE:
        await query.edit_message_reply_markup(reply_markup=None)
    if stored and sign == "-":
        await pressed_message(query).reply_text(
            prompt("suggestion", exchange_id, lang),
            reply_markup=ForceReply(
                selective=True,
                input_field_placeholder=messages.text("suggestion_placeholder", lang),
            ),
        )
        await offer_after_thumbs_down(update, context, int(exchange_id))


async def take_reply_to_prompt(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """Handle a reply to one of the bot's prompts; False if the message is not one."""
    message = update.effective_message
    if message is None:
        return False
    prompt = message.reply_to_message
    if prompt is None or prompt.from_user is None or prompt.from_user.id != context.bot.id:
        return False
    prompt_link = prompt_of(prompt.text or "")
    if prompt_link is None:
        return False
    kind, exchange_id = prompt_link
    app = app_of(context)
    text = clean_question(message.text or "")  # as questions are: no control characters
    user = user_info(update)
    if not text:
        return False
    if kind == "suggestion":
        # Only the user who pressed 👎 suggests; anyone else's reply is a question.
        if not await app.learning.suggest(exchange_id, user.id if user else None, text):
            return False
        await message.reply_text(messages.text("suggestion_thanks", user_lang(update)))
        return True
    if not app.settings.is_admin(user.id if user else None):
        return False
    # An admin's answer keeps its formatting (links, bold, ...) as Telegram HTML.
    answer = clean_question(message.text_html or "")
    await _approve(
        message, app.learning, exchange_id, answer, user.id if user else None, user_lang(update)
    )
    return True


# -- admins ---------------------------------------------------------------------------------


@admin_only
@admin_data_private_only
async def review(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/review: the next group of questions that need an answer, with buttons to decide."""
    learning, lang = app_of(context).learning, user_lang(update)
    queue = await learning.review_queue()
    if not queue:
        await message_of(update).reply_text(messages.text("review_empty", lang))
        return
    item = queue[0]
    if item.kind == ReviewKind.CONFIRMED:
        text = _describe_confirmed(item, len(queue), lang)
        keyboard = _confirmed_keyboard(item, lang)
    else:
        text = _describe(item, len(queue), lang)
        keyboard = await _review_keyboard(learning, item, lang)
    await message_of(update).reply_text(text, reply_markup=keyboard)


def _describe_confirmed(item: ReviewItem, queue_length: int, lang: str) -> str:
    questions = list(item.wordings.values())
    lines = [
        messages.text(
            "review_confirmed_title",
            lang,
            count=queue_length,
            n=len(questions),
            answer=quoted(plain_text(item.answer or "")),
        ),
        messages.text(
            "review_confirmed_questions",
            lang,
            count=item.count,
            questions=quoted_list(questions, 10, lang=lang),
        ),
        messages.text("review_confirmed_decide", lang),
    ]
    return fit_message("\n".join(lines))


def _confirmed_keyboard(item: ReviewItem, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[
        InlineKeyboardButton(
            messages.text("review_approve_all_button", lang, n=len(item.wordings)),
            callback_data=f"rv:a:{item.exchange_id}",
        ),
        InlineKeyboardButton(
            messages.text("review_ignore_button", lang), callback_data=f"rv:i:{item.exchange_id}"
        ),
    ]])  # fmt: skip


def _describe(item: ReviewItem, queue_length: int, lang: str) -> str:
    reasons = ", ".join(
        f"{messages.text(f'review_reason_{ReviewReason(reason).name.lower()}', lang)} ×{n}"
        for reason, n in item.reasons.most_common()
    )
    lines = [
        messages.text("review_title", lang, count=queue_length, question=quoted(item.question)),
        messages.text("review_asked", lang, count=item.count, reasons=reasons),
    ]
    others = [w for w in item.wordings.values() if w != item.question]
    if others:
        lines.append(
            messages.text("review_also_asked", lang, wordings=quoted_list(others, lang=lang))
        )
    if item.suggestions:
        suggested = quoted_list([s for _, s in item.suggestions], 3, lang=lang)
        lines.append(messages.text("review_suggested", lang, answers=suggested))
    if item.person_answers:
        answers = quoted_list([plain_text(a) for _, a in item.person_answers], 3, lang=lang)
        lines.append(messages.text("review_person_answered", lang, answers=answers))
    if item.choices:
        chosen = [f"{quoted(answer)} ×{n}" for answer, (_, n) in _top_choices(item)]
        lines.append(messages.text("review_chosen", lang, answers=", ".join(chosen)))
    lines.append(messages.text("review_decide", lang))
    return fit_message("\n".join(lines))


def _top_choices(item: ReviewItem) -> list[tuple[str, tuple[int, int]]]:
    return sorted(item.choices.items(), key=lambda choice: -choice[1][1])[:3]


async def _review_keyboard(
    learning: LearningLoop, item: ReviewItem, lang: str
) -> InlineKeyboardMarkup:
    # What the askers chose comes first: approving it is one press.
    rows = [
        [InlineKeyboardButton(
            messages.text(
                "review_chosen_button", lang, answer=shortened(answer, BUTTON_TEXT_CHARS), n=n
            ),
            callback_data=f"rv:c:{item.exchange_id}:{choice_id}",
        )]
        for answer, (choice_id, n) in _top_choices(item)
    ]  # fmt: skip
    for answer_id, answer, probability in await learning.candidate_answers(item):
        rows.append([InlineKeyboardButton(
            f"→ {shortened(answer, BUTTON_TEXT_CHARS)} ({probability:.0%})",
            callback_data=f"rv:m:{item.exchange_id}:{answer_id}",
        )])  # fmt: skip
    for person_exchange_id, answer in item.person_answers[:3]:
        rows.append([InlineKeyboardButton(
            f"🧑 {shortened(plain_text(answer), BUTTON_TEXT_CHARS)}",
            callback_data=f"rv:p:{item.exchange_id}:{person_exchange_id}",
        )])  # fmt: skip
    for feedback_id, suggestion in item.suggestions[:3]:
        rows.append([InlineKeyboardButton(
            f"💡 {shortened(suggestion, BUTTON_TEXT_CHARS)}",
            callback_data=f"rv:s:{item.exchange_id}:{feedback_id}",
        )])  # fmt: skip
    rows.append([InlineKeyboardButton(
        messages.text("review_write_button", lang), callback_data=f"rv:n:{item.exchange_id}"
    )])  # fmt: skip
    rows.append([
        InlineKeyboardButton(
            messages.text("review_out_of_scope_button", lang),
            callback_data=f"rv:o:{item.exchange_id}",
        ),
        InlineKeyboardButton(
            messages.text("review_ignore_button", lang), callback_data=f"rv:i:{item.exchange_id}"
        ),
    ])  # fmt: skip
    return InlineKeyboardMarkup(rows)


@admin_only
async def decide_review(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A /review button: map to an answer, take a user's suggestion or choice, write one, mark
    the group out of scope, approve a 👍-confirmed group with its answer, or ignore it."""
    query = query_of(update)
    action, exchange_id, *rest = query_data(query).split(":")[1:]
    learning, lang = app_of(context).learning, user_lang(update)
    admin_id = sender_of(update).id
    await query.answer()
    await query.edit_message_reply_markup(reply_markup=None)
    if action == "n":
        await pressed_message(query).reply_text(
            prompt("answer", exchange_id, lang),
            reply_markup=ForceReply(
                selective=True, input_field_placeholder=messages.text("answer_placeholder", lang)
            ),
        )
        return
    if action == "a":
        approval = await learning.approve_confirmed(int(exchange_id), admin_id)
        if approval is None:
            await pressed_message(query).reply_text(messages.text("review_confirmed_gone", lang))
            return
        shown = quoted_list(approval.questions, lang=lang)
        confirmed = quoted(plain_text(approval.answer))
        await pressed_message(query).reply_text(
            messages.text("review_approved", lang, questions=shown, answer=confirmed)
            if approval.approved
            else messages.text("review_already_decided", lang, questions=shown)
        )
        return
    if action in ("i", "o"):
        questions = await learning.review_group(int(exchange_id))
        if action == "i":
            await learning.ignore(questions, admin_id)
        else:
            await learning.mark_out_of_scope(questions, admin_id)
        outcome = "review_ignored" if action == "i" else "review_out_of_scope"
        await pressed_message(query).reply_text(
            messages.text(outcome, lang, questions=quoted_list(questions, lang=lang))
        )
        return
    if action == "m":
        answer = await learning.answer_by_id(rest[0])
    elif action == "c":
        answer = await learning.chosen_answer(int(rest[0]))
    elif action == "p":
        answer = await learning.person_answer(int(rest[0]))
    else:
        suggestion = await learning.suggested_answer(int(rest[0]))
        # A user's suggestion is plain text; answers are stored as Telegram HTML.
        answer = html.escape(suggestion, quote=False) if suggestion else None
    if not answer:
        await pressed_message(query).reply_text(messages.text("review_answer_unknown", lang))
        return
    await _approve(pressed_message(query), learning, int(exchange_id), answer, admin_id, lang)


async def _approve(
    message: Message,
    learning: LearningLoop,
    exchange_id: int,
    answer: str,
    admin_id: int | None,
    lang: str,
) -> None:
    questions = await learning.review_group(exchange_id)
    if not questions:
        await message.reply_text(messages.text("review_question_gone", lang))
        return
    shown = quoted_list(questions, lang=lang)
    if await learning.approve(questions, answer, admin_id):
        await message.reply_text(
            messages.text(
                "review_approved", lang, questions=shown, answer=quoted(plain_text(answer))
            )
        )
    else:
        await message.reply_text(messages.text("review_already_decided", lang, questions=shown))


@admin_only
@admin_data_private_only
async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats: volume, users, fallback rate, ratings per model, busiest unanswered questions,
    and a chart of daily volume and fallback rate."""
    lang = user_lang(update)
    try:
        figures = await app_of(context).learning.stats(PENDING_WAIT_SECONDS)
    except ExchangesNotWrittenError as error:
        await message_of(update).reply_text(not_yet_written(error, lang))
        return
    lines = [
        messages.text(
            "stats_questions", lang, exchanges=figures["exchanges"], users=figures["users"]
        ),
        messages.text("stats_fallback_rate", lang, rate=f"{figures['fallback_rate']:.1%}"),
    ]
    for version, counts in sorted(figures["ratings"].items()):
        rated = counts["up"] + counts["down"]
        lines.append(
            messages.text(
                "stats_model_ratings",
                lang,
                version=version,
                up_sign=THUMBS_UP,
                up=counts["up"],
                down_sign=THUMBS_DOWN,
                down=counts["down"],
                positive=f"{counts['up'] / rated:.0%}",
            )
        )
    choices = figures["choices"]
    if choices["answer"] or choices["none"]:
        lines.append(
            messages.text("stats_choices", lang, answer=choices["answer"], none=choices["none"])
        )
    if figures["busiest_unanswered"]:
        lines.append(messages.text("stats_busiest", lang))
        lines += [f"  {n}× {quoted(question)}" for question, n in figures["busiest_unanswered"]]
    text = fit_message("\n".join(lines))
    if figures["daily"]:
        await message_of(update).reply_photo(
            await draw_stats_chart(figures["daily"]),
            caption=text[:MAX_CAPTION_CHARS],
        )
    else:
        await message_of(update).reply_text(text)
