"""Runs a module as a background process, at a lower CPU priority than the bot:

    python -m bot.serving.background NICENESS MODULE [ARGUMENT ...]

is `python -m MODULE [ARGUMENT ...]` made NICENESS nicer (0-19) first. The bot starts its
training worker this way, so that while a model trains, the bot and its model process get the
cores first and replies do not wait behind the training's threads. The priority is lowered
here, before the module imports anything: the threads its libraries start later inherit it
(on Linux a thread's priority is its own, so lowering the process from outside after it
started would leave threads already running at the bot's priority)."""

from __future__ import annotations

import os
import runpy
import sys


def main(argv: list[str]) -> None:
    niceness, module, *arguments = argv
    if hasattr(os, "nice"):  # not on Windows: the worker then runs at the bot's priority
        os.nice(int(niceness))
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
