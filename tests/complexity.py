"""Measuring how much work a call does, to test complexity rather than time."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any


def python_lines_run(call: Callable[[], Any], under: Path | None = None) -> int:
    """The number of Python lines executed by call() (each pass through a loop counts), only
    those of files under the folder `under` if given: a measure of its work that a busy
    machine does not change."""
    count = 0
    prefix = str(under) if under is not None else ""

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        nonlocal count
        if event == "line" and frame.f_code.co_filename.startswith(prefix):
            count += 1
        return trace

    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
    return count
