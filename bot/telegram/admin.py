"""Admin-only handlers (QABOT_ADMIN_IDS): teaching, retraining, model versions, exports."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot import messages
from bot.app.app import App
from bot.app.exports import FORMATS, UPLOAD_LIMIT_BYTES, Exports
from bot.app.gate import describe as describe_gate
from bot.app.learning import TeachRefusedError
from bot.serving.retraining import (
    TrainingBusyError,
    TrainingFailedError,
    TrainingRefusedError,
    training_installed,
)
from bot.storage.exchange_writer import ExchangesNotWrittenError
from bot.telegram.common import (
    PENDING_WAIT_SECONDS,
    admin_data_private_only,
    admin_only,
    app_of,
    command_argument,
    fit_message,
    message_of,
    not_yet_written,
    quoted,
    user_lang,
)
from model.data_checks import DataReport
from model.figures import format_figures
from model.registry import NoEarlierVersionError, RegistryError

log = logging.getLogger(__name__)

# The data report in /retrain's messages (Telegram's limit is 4,096 characters; a report that
# finds many conflicting questions can be longer).
MAX_REPORT_CHARS = 3000


@admin_only
async def teach(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/teach question | answer: add a pair, answered at once."""
    message, lang = message_of(update), user_lang(update)
    question, sep, answer = command_argument(message).partition("|")
    if not sep or not question.strip() or not answer.strip():
        await message.reply_text(messages.text("teach_usage", lang))
        return
    # The answer keeps the admin's formatting (links, bold, code, ...) as Telegram HTML.
    answer_html = (message.text_html or "").partition(" ")[2].partition("|")[2]
    try:
        added = await app_of(context).learning.teach(question, answer_html)
    except TeachRefusedError as error:
        await message.reply_text(
            messages.text("teach_refused", lang, error=error.in_language(lang))
        )
        return
    await message.reply_text(
        messages.text(
            "teach_learned" if added else "teach_known",
            lang,
            question=quoted(question),
            answer=quoted(answer),
        )
    )


@admin_only
async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/retrain [force]: train a candidate in a worker process, show progress, and promote it
    only if it is not worse than the live model (or when forced)."""
    app = app_of(context)
    message, lang = message_of(update), user_lang(update)
    if not training_installed():
        await message.reply_text(messages.text("retrain_not_installed", lang))
        return
    if app.models.training:
        await message.reply_text(messages.text("retrain_busy_will_report", lang))
        return
    force = command_argument(message).lower() == "force"
    status = await message.reply_text(messages.text("retrain_started", lang))
    context.application.create_task(
        _run_retraining(app, message, status, force, lang), update=update, name="retrain"
    )


async def _run_retraining(
    app: App, request: Message, status: Message, force: bool, lang: str
) -> None:
    # The data checks' findings stay at the top of the progress message while training runs.
    report_text = ""

    async def show_progress(event: dict[str, Any]) -> None:
        nonlocal report_text
        if event.get("event") == "data_report":
            report = DataReport.from_dict(event["report"])
            if not report.refused:  # a refusal is answered on its own below
                report_text = data_report_text(report, lang) + "\n\n"
                await _edit(status, report_text + messages.text("training", lang))
        elif event.get("event") == "epoch":
            accuracy = event.get("val_accuracy")
            progress = messages.text(
                "training_epoch_accuracy" if isinstance(accuracy, float) else "training_epoch",
                lang,
                epoch=event["epoch"],
                epochs=event["epochs"],
                accuracy=f"{accuracy:.1%}" if isinstance(accuracy, float) else "",
            )
            await _edit(status, report_text + progress)

    try:
        outcome = await app.models.retrain(show_progress, force=force)
    except TrainingBusyError:
        await request.reply_text(messages.text("retrain_busy", lang))
        return
    except TrainingRefusedError as error:
        await _edit(status, messages.text("training_refused_status", lang))
        await request.reply_text(
            messages.text("training_refused", lang, report=data_report_text(error.report, lang))
        )
        return
    except TrainingFailedError as error:
        await request.reply_text(fit_message(messages.text("training_failed", lang, error=error)))
        return
    await _edit(status, report_text + messages.text("training_finished", lang))
    comparison = describe_gate(outcome.gate_figures, lang)
    version = outcome.trained.version
    if outcome.promoted:
        verdict_key = "retrain_promoted_forced" if force else "retrain_promoted"
    else:
        verdict_key = "retrain_not_promoted"
    verdict = messages.text(verdict_key, lang, version=version)
    figures = format_figures(outcome.trained.metrics, messages.figure_words(lang))
    await request.reply_text(f"{verdict}\n{comparison}\n{figures}")


def data_report_text(report: DataReport, lang: str = "en") -> str:
    """The data checks' report in the admin's language (in English, the words `qabot train`
    prints), cut to fit a message."""
    text = "\n".join(report.lines(messages.data_words(lang)))
    if len(text) <= MAX_REPORT_CHARS:
        return text
    return text[: MAX_REPORT_CHARS - 1] + messages.text("report_cut", lang)


async def _edit(message: Message, text: str) -> None:
    try:
        await message.edit_text(text)
    except BadRequest as error:  # "message is not modified" and the like: not worth failing for
        log.debug("could not edit progress message: %s", error)


@admin_only
async def models(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/models: the model versions with their figures; which one is live."""
    versions, lang = await app_of(context).models.versions(), user_lang(update)
    words = messages.figure_words(lang)
    if not versions:
        await message_of(update).reply_text(messages.text("no_models", lang))
        return
    lines = [
        f"{'▶' if v.live else '•'} {v.name}{messages.text('model_live', lang) if v.live else ''}: "
        f"{format_figures(v.metrics, words)}{_gate_suffix(v.metrics, lang)}"
        for v in versions[:15]
    ]
    await message_of(update).reply_text("\n".join(lines))


def _gate_suffix(metrics: dict[str, Any], lang: str) -> str:
    gate = metrics.get("gate")
    return "" if gate is None else "; " + describe_gate(gate, lang, short=True)


@admin_only
async def rollback(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/rollback: serve the previously promoted model version again, at once."""
    lang = user_lang(update)
    try:
        version = await app_of(context).models.rollback()
    except RegistryError as error:
        reason = (
            messages.text("rollback_nothing_earlier", lang)
            if isinstance(error, NoEarlierVersionError)
            else str(error)  # a damaged registry: its own words, for whoever repairs it
        )
        await message_of(update).reply_text(messages.text("rollback_failed", lang, error=reason))
        return
    await message_of(update).reply_text(messages.text("rolled_back", lang, version=version))


@admin_only
@admin_data_private_only
async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export [csv|jsonl] [7d|24h|2026-11-01]: send the logged conversations as a document."""
    message, lang = message_of(update), user_lang(update)
    try:
        fmt, since = parse_export_arguments(command_argument(message))
    except ExportArgumentError as error:
        await message.reply_text(
            messages.text(
                "export_refused", lang, error=error.in_language(lang), formats="|".join(FORMATS)
            )
        )
        return
    exports = app_of(context).exports

    async def write(path: Path) -> int:
        return await exports.write_conversations_file(
            path, fmt, since, pending_wait_seconds=PENDING_WAIT_SECONDS
        )

    try:
        await _send_file(update, exports, f"qabot-exchanges.{fmt}", write, "export_what_exchanges")
    except ExchangesNotWrittenError as error:
        await message.reply_text(not_yet_written(error, lang))


@admin_only
@admin_data_private_only
async def pairs(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/pairs: send the training set as CSV (the import format)."""
    exports = app_of(context).exports
    await _send_file(
        update, exports, "qabot-pairs.csv", exports.write_pairs_file, "export_what_pairs"
    )


async def _send_file(
    update: Update,
    exports: Exports,
    name: str,
    write: Callable[[Path], Awaitable[int]],
    what_key: str,
) -> None:
    """Write an export (compressed when large) and send it as a document; `what_key` is the
    message key naming what it holds."""
    message, lang = message_of(update), user_lang(update)
    what = messages.text(what_key, lang)
    await message.reply_chat_action(ChatAction.UPLOAD_DOCUMENT)
    async with exports.file_to_send(name, write) as export:
        if export.path is None:
            await message.reply_text(
                messages.text(
                    "export_too_large",
                    lang,
                    count=export.count,
                    what=what,
                    size_mb=f"{export.size_mb:.0f}",
                    limit_mb=f"{UPLOAD_LIMIT_BYTES / 1e6:.0f}",
                )
            )
            return
        caption_key = "export_caption_compressed" if export.compressed else "export_caption"
        await message.reply_document(
            export.path,
            filename=export.path.name,
            caption=messages.text(caption_key, lang, count=export.count, what=what),
        )


class ExportArgumentError(messages.CatalogError, ValueError):
    """A word of /export's arguments that is no format, range or date."""


def parse_export_arguments(argument: str) -> tuple[str, datetime | None]:
    """`jsonl 7d` → ("jsonl", 7 days ago); `2026-11-01` → ("csv", that day);
    ExportArgumentError if odd."""
    fmt, since = "csv", None
    for word in argument.lower().split():
        if word in FORMATS:
            fmt = word
        elif match := re.fullmatch(r"(\d+)([hdw])", word):
            hours = int(match[1]) * {"h": 1, "d": 24, "w": 24 * 7}[match[2]]
            try:
                since = datetime.now(UTC) - timedelta(hours=hours)
            except OverflowError:
                raise ExportArgumentError("export_too_far_back", word=word) from None
        else:
            try:
                moment = datetime.fromisoformat(word)
            except ValueError:
                raise ExportArgumentError("export_unknown_word", word=word) from None
            since = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return fmt, since
