"""The `qabot` command line (see DESIGN.md for the interface).

Only the standard library is imported up front, so that `--help` answers at once: each
command imports what it needs. Setup mistakes end in one or two lines and exit code 2."""

# What it prints is for operators in a terminal: English only (bot/messages.py is for users).
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.startup import SetupError, keep_files_private, load_settings, migrate_database

if TYPE_CHECKING:
    from bot.app.app import App
    from bot.settings import Settings

# Exit codes: a setup mistake (a bad setting, an unreachable database or Bot API); a data file
# refused (one it cannot read) is model.commands.DATA_REFUSED, as `qabot train` refuses data.
SETUP_ERROR = 2
INTERRUPTED = 130


def parse_since(value: str) -> datetime:
    """An ISO date or time (UTC unless it says otherwise)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_item_id(value: str) -> int:
    """A review item as `qabot review` lists it: `#123` or `123`."""
    digits = value.removeprefix("#")
    if not digits.isdecimal() or len(digits) > 18:
        raise argparse.ArgumentTypeError(f"not an item id as listed by qabot review: {value!r}")
    return int(digits)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qabot", description="A question-answering Telegram bot.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="prepare the store and model, then serve Telegram or the console"
    )
    commands.add_parser(
        "chat", help="console chat (one answer per line when stdin is not a terminal)"
    )
    commands.add_parser(
        "train", help="train a new model version (see `qabot train --help`)", add_help=False
    )
    commands.add_parser(
        "eval", help="evaluate the current model (see `qabot eval --help`)", add_help=False
    )

    export = commands.add_parser(
        "export", help="write the logged conversations (or the training set)"
    )
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--out", type=Path, help="output file (default: standard output)")
    export.add_argument("--since", type=parse_since, help="only exchanges from this date (UTC)")
    export.add_argument(
        "--pairs", action="store_true", help="write the Q&A training set instead (CSV)"
    )

    importer = commands.add_parser("import", help="add Q&A pairs from a file to the training set")
    importer.add_argument("file", type=Path)
    importer.add_argument(
        "--keep-bundled",
        action="store_true",
        help="keep the bundled example pairs (the first import replaces them by default)",
    )

    commands.add_parser("models", help="list the model versions and which one is live")
    commands.add_parser("rollback", help="serve the previously promoted model version again")
    review = commands.add_parser(
        "review", help="list the review queue, most instructive first (as /review orders it)"
    )
    review.add_argument("--limit", type=int, default=20)
    review.add_argument(
        "--approve",
        type=parse_item_id,
        action="append",
        default=[],
        metavar="#ID",
        help="approve the listed group of questions users confirmed (👍) with the answer they "
        "confirmed (they join the training set); repeatable",
    )
    review.add_argument(
        "--out-of-scope",
        type=parse_item_id,
        action="append",
        default=[],
        metavar="#ID",
        help="mark the group of this listed item as questions the bot should not answer "
        "(they join the training set as out-of-scope rows); repeatable",
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply the Alembic migrations")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in ("train", "eval"):
        from model.commands import eval_parser, train_parser

        command_parser = train_parser if args.command == "train" else eval_parser
        command_parser(bot_defaults=True).parse_args(rest)  # --help answered before any import
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return run_command(args, rest)
    except SetupError as error:
        print(f"qabot: {error}", file=sys.stderr)
        return SETUP_ERROR
    except BrokenPipeError:
        # The reader went away (`qabot export | head`): nothing more to write, and nothing to
        # report. Python would complain again when flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return INTERRUPTED


def run_command(args: argparse.Namespace, rest: list[str]) -> int:
    import asyncio

    from bot.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.telegram_bot_token)
    keep_files_private(settings.home)
    if args.command in ("train", "eval"):
        return run_model_command(settings, args.command, rest)
    migrate_database(settings)
    if args.command in ("run", "chat"):
        from bot.run import run

        return run(settings, console=args.command == "chat")
    if args.command == "db":
        print(
            f"database is at the newest revision: {settings.database_url.split('@')[-1]}",
            file=sys.stderr,
        )
        return 0
    if args.command == "export":
        return asyncio.run(export(settings, args.format, args.out, args.since, args.pairs))
    if args.command == "import":
        return asyncio.run(import_pairs(settings, args.file, args.keep_bundled))
    if args.command == "models":
        return asyncio.run(list_models(settings))
    if args.command == "rollback":
        return asyncio.run(rollback(settings))
    assert args.command == "review", args.command
    return asyncio.run(review(settings, args.limit, args.out_of_scope, args.approve))


def run_model_command(settings: Settings, command: str, args: list[str]) -> int:
    """`qabot train --data ...` and `qabot eval` are the model package's own command lines,
    with the bot's model directory as the default; `qabot train` without --data trains on the
    store's training set through the application, as /retrain does."""
    bots_models = "--model-dir" not in args and not any(a.startswith("--model-dir=") for a in args)
    if bots_models:
        args = [*args, "--model-dir", str(settings.models_dir)]
    if command == "eval":
        from model.evaluate import main as evaluate_main

        return evaluate_main(args)

    import asyncio

    # TensorFlow's C++ log lines ("E0000 … NodeDef mentions attribute …") would fall among the
    # data report's; a real failure raises in Python and is reported as such.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from bot.serving.retraining import TrainingNotInstalledError, training_installed
    from model.train import main as train_main

    if not training_installed():
        raise SetupError(str(TrainingNotInstalledError(settings.models_dir)))
    if any(a == "--data" or a.startswith("--data=") for a in args):
        code = train_main(args)
        if code == 0 and bots_models:
            try:  # the model is trained and live whatever the database says
                migrate_database(settings)
                asyncio.run(record_current_version(settings))
            except SetupError as error:
                print(f"warning: the database did not record the version: {error}", file=sys.stderr)
            print(
                "note: the bot's training set is unchanged: /retrain and `qabot train` train on "
                "it, not on these files; `qabot import` a file to make it part of it",
                file=sys.stderr,
            )
        return code
    migrate_database(settings)
    return asyncio.run(train_from_store(settings))


def opened_app(settings: Settings) -> contextlib.AbstractAsyncContextManager[App]:
    """The application layer without a model process, imported only once a command runs."""
    from bot.app.app import opened_app as open_app

    return open_app(settings)


async def record_current_version(settings: Settings) -> None:
    async with opened_app(settings) as app:
        await app.models.record_current()


async def train_from_store(settings: Settings) -> int:
    """Train on the store's training set and promote the result: /retrain force."""
    from bot.app.models import EmptyTrainingSetError
    from bot.serving.retraining import TrainingFailedError, TrainingRefusedError
    from model.commands import DATA_REFUSED
    from model.data_checks import REFUSED
    from model.train import print_progress

    async def show(event: dict[str, Any]) -> None:
        print_progress(event)

    async with opened_app(settings) as app:
        try:
            outcome = await app.models.train_and_promote(show)
        except EmptyTrainingSetError:
            print(
                "error: the training set is empty: import a Q&A file first (qabot import F), "
                "or train on one (qabot train --data F)",
                file=sys.stderr,
            )
            return DATA_REFUSED
        except TrainingRefusedError:  # the report's errors, printed above, said why
            print(f"error: {REFUSED}", file=sys.stderr)
            return DATA_REFUSED
        except TrainingFailedError as error:
            print(f"training failed: {error}", file=sys.stderr)
            return 1
    from bot.app.gate import describe as describe_gate
    from model.figures import format_figures

    trained = outcome.trained
    print(f"model {trained.version} written to {trained.path} and promoted")
    print(f"  {format_figures(trained.metrics)}")
    print(f"  {describe_gate(outcome.gate_figures)}")
    return 0


async def export(
    settings: Settings, fmt: str, out_path: Path | None, since: datetime | None, pairs: bool
) -> int:
    async with opened_app(settings) as app:
        out: TextIO = out_path.open("w", encoding="utf-8", newline="") if out_path else sys.stdout
        try:
            if pairs:
                count, what = await app.exports.write_pairs(out), "Q&A pairs"
            else:
                count = await app.exports.write_conversations(out, fmt, since)
                what = "exchanges"
        finally:
            if out_path:
                out.close()
    print(f"wrote {count} {what}" + (f" to {out_path}" if out_path else ""), file=sys.stderr)
    return 0


async def import_pairs(settings: Settings, path: Path, keep_bundled: bool = False) -> int:
    from model.commands import DATA_REFUSED

    async with opened_app(settings) as app:
        try:
            imported = await app.exports.import_pairs(path, keep_bundled=keep_bundled)
        except ValueError as error:
            print(f"cannot import {path}: {error}", file=sys.stderr)
            return DATA_REFUSED
    print(
        f"imported {imported.added} new Q&A pairs from {path} ({imported.known} already in "
        "the training set or repeated in the file)",
        file=sys.stderr,
    )
    if imported.bundled_removed:
        print(
            f"removed the {imported.bundled_removed} bundled example pairs, the training set's "
            "only other pairs (--keep-bundled keeps them)",
            file=sys.stderr,
        )
    if imported.added or imported.bundled_removed:
        print("the bot learns them at the next training: run `qabot train`", file=sys.stderr)
    return 0


async def list_models(settings: Settings) -> int:
    from bot.app.gate import describe as describe_gate
    from model.figures import format_figures

    async with opened_app(settings) as app:
        versions = await app.models.versions()
    for version in versions:
        marker = "*" if version.live else " "
        gate = version.metrics.get("gate")
        gate_text = "" if gate is None else f"; {describe_gate(gate, short=True)}"
        print(f"{marker} {version.name}  {format_figures(version.metrics)}{gate_text}")
    if not versions:
        print("no model versions yet", file=sys.stderr)
    return 0


async def rollback(settings: Settings) -> int:
    """Running bots pick the change up within seconds (they watch the registry)."""
    from model.registry import RegistryError

    async with opened_app(settings) as app:
        try:
            version = await app.models.rollback()
        except RegistryError as error:
            print(f"cannot roll back: {error}", file=sys.stderr)
            return 1
    print(f"model {version} is live again", file=sys.stderr)
    return 0


async def review(
    settings: Settings, limit: int, out_of_scope: list[int], approve: Sequence[int] = ()
) -> int:
    """List the review queue, grouped and ordered as /review shows it, after marking the
    groups of the given items out of scope and approving the 👍-confirmed groups given (the
    same use cases as /review)."""
    from bot.app.review_queue import ReviewKind
    from bot.console import terminal_safe

    async with opened_app(settings) as app:
        await app.open_for_review()
        for exchange_id in out_of_scope:
            questions = await app.learning.review_group(exchange_id)
            if not questions:
                print(f"#{exchange_id} is not a logged question", file=sys.stderr)
                return 1
            marked = await app.learning.mark_out_of_scope(questions, admin_id=None)
            shown = "; ".join(terminal_safe(q) for q in questions)
            print(f"{'out of scope' if marked else 'already decided'}: {shown}", file=sys.stderr)
        for exchange_id in approve:
            approval = await app.learning.approve_confirmed(exchange_id, admin_id=None)
            if approval is None:
                print(f"#{exchange_id} is not a group of confirmed questions", file=sys.stderr)
                return 1
            approved = "; ".join(terminal_safe(q) for q in approval.questions)
            outcome = "approved" if approval.approved else "already decided"
            print(f"{outcome}: {approved} -> {terminal_safe(approval.answer)}", file=sys.stderr)
        queue = await app.learning.review_queue()
    for item in queue[:limit]:
        reasons = ", ".join(f"{reason} x{n}" for reason, n in item.reasons.most_common())
        head = f"#{item.exchange_id}  {item.priority:6.2f}  {item.count:5d}"
        if item.kind == ReviewKind.CONFIRMED:
            confirmed = "; ".join(terminal_safe(q) for q in item.wordings.values())
            print(f"{head}  confirmed -> {terminal_safe(item.answer or '')}: {confirmed}")
        else:
            print(f"{head}  {terminal_safe(item.question)}  ({reasons})")
    print(
        f"{len(queue)} items to review (columns: id, priority, times asked); decide them with "
        "/review in Telegram, mark one as questions the bot should not answer with "
        "`qabot review --out-of-scope #ID`, or approve a confirmed group with "
        "`qabot review --approve #ID`",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
