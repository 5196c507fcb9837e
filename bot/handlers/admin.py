"""Admin-only handlers (QABOT_ADMIN_IDS): teaching, retraining, exports."""

from __future__ import annotations

import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import ContextTypes

from bot.exports import FORMATS, write_exchanges
from bot.handlers.common import admin_only, command_argument, service_of
from bot.retraining import TrainingBusyError, TrainingFailedError
from bot.service import QAService

log = logging.getLogger(__name__)


@admin_only
async def teach(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/teach question | answer: add a pair, answered at once."""
    message = update.effective_message
    question, sep, answer = command_argument(message).partition("|")
    if not sep or not question.strip() or not answer.strip():
        await message.reply_text("Usage: /teach question | answer")
        return
    added = await service_of(context).teach(question, answer)
    status = "Learned" if added else "I already knew that"
    await message.reply_text(f"{status}: “{question.strip()}” → “{answer.strip()}”")


@admin_only
async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/retrain: train a new model in a worker process; report progress and the result."""
    service = service_of(context)
    message = update.effective_message
    if service.trainer.busy:
        await message.reply_text("A training run is already in progress; I'll report when it ends.")
        return
    status = await message.reply_text("Retraining started. I keep answering everyone meanwhile.")
    context.application.create_task(
        _run_retraining(service, message, status), update=update, name="retrain"
    )


async def _run_retraining(service: QAService, request: Message, status: Message) -> None:
    async def show_progress(event: dict[str, Any]) -> None:
        if event.get("event") == "epoch":
            accuracy = event.get("val_accuracy")
            shown = f", validation accuracy {accuracy:.1%}" if isinstance(accuracy, float) else ""
            await _edit(status, f"Training… epoch {event['epoch']}/{event['epochs']}{shown}")

    try:
        trained = await service.retrain(show_progress)
    except TrainingBusyError:
        await request.reply_text("A training run is already in progress.")
        return
    except TrainingFailedError as error:
        await request.reply_text(
            f"Training failed; the current model keeps serving. Reason: {error}"
        )
        return
    await _edit(status, "Training finished.")
    await request.reply_text(
        f"New model {trained.version} is live.\n{format_metrics(trained.metrics)}"
    )


def format_metrics(metrics: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("in_scope_accuracy", "validation accuracy"),
        ("oos_recall", "out-of-scope recall"),
    ):
        if isinstance(metrics.get(key), int | float):
            parts.append(f"{label} {metrics[key]:.1%}")
    if isinstance(metrics.get("threshold"), int | float):
        parts.append(f"threshold {metrics['threshold']:.2f}")
    if isinstance(metrics.get("n"), int):
        parts.append(f"{metrics['n']} validation questions")
    return ", ".join(parts) or "(no validation figures)"


async def _edit(message: Message, text: str) -> None:
    try:
        await message.edit_text(text)
    except BadRequest as error:  # "message is not modified" and the like: not worth failing for
        log.debug("could not edit progress message: %s", error)


@admin_only
async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export [csv|jsonl]: send the logged conversations as a document."""
    message = update.effective_message
    fmt = command_argument(message).lower() or "csv"
    if fmt not in FORMATS:
        await message.reply_text(f"Usage: /export [{'|'.join(FORMATS)}]")
        return
    service = service_of(context)
    await service.writer.flush()
    await message.reply_chat_action(ChatAction.UPLOAD_DOCUMENT)
    exports_dir = service.settings.home / "exports"
    exports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(dir=exports_dir) as tmp:
        path = Path(tmp) / f"qabot-exchanges-{stamp}.{fmt}"
        with path.open("w", encoding="utf-8", newline="") as out:
            count = await write_exchanges(service.store, out, fmt)
        await message.reply_document(path, filename=path.name, caption=f"{count} exchanges")
