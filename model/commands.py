"""The argument parsers of `qabot train` and `qabot eval` (also `python -m model.train` and
`python -m model.evaluate`). Standard library only: `--help` must not wait for NumPy or the
model code to be imported."""

from __future__ import annotations

import argparse
from pathlib import Path

# Exit code when a data file cannot be read, or its data cannot make a useful model (see
# model/data_checks.py).
DATA_REFUSED = 2


def train_parser(*, bot_defaults: bool = False) -> argparse.ArgumentParser:
    """bot_defaults: the bot's own command, where the store's training set and the bot's model
    folder stand in for --data and --model-dir."""
    parser = argparse.ArgumentParser(prog="qabot train", description="Train a new model version.")
    _add_data_arguments(
        parser,
        "Q&A file (CSV question,answer or JSON Lines); repeatable"
        + ("; default: the store's training set" if bot_defaults else ""),
        required=not bot_defaults,
    )
    parser.add_argument("--val", type=Path, help="validation Q&A file (threshold and figures)")
    parser.add_argument("--oos-val", type=Path, help="validation out-of-scope questions")
    _add_model_dir(parser, bot_defaults)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-promote", action="store_true", help="write the version but keep the current one live"
    )
    parser.add_argument(
        "--progress-json", action="store_true", help="print one JSON object per line on stdout"
    )
    return parser


def eval_parser(*, bot_defaults: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qabot eval", description="Evaluate the current model.")
    _add_data_arguments(parser, "Q&A file to evaluate on; repeatable", required=True)
    _add_model_dir(parser, bot_defaults)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--report", type=Path, help="write a per-answer report into this folder")
    return parser


def _add_data_arguments(parser: argparse.ArgumentParser, help: str, *, required: bool) -> None:
    parser.add_argument("--data", type=Path, action="append", required=required, help=help)
    parser.add_argument(
        "--oos",
        type=Path,
        action="append",
        default=[],
        help="file of out-of-scope questions; repeatable",
    )


def _add_model_dir(parser: argparse.ArgumentParser, bot_defaults: bool) -> None:
    parser.add_argument(
        "--model-dir",
        type=Path,
        required=not bot_defaults,
        help="model registry folder" + (" (default: the bot's)" if bot_defaults else ""),
    )
