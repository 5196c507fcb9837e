"""Measuring how much work a call does, to test complexity rather than time."""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any


def python_lines_run(call: Callable[[], Any]) -> int:
    """The number of Python lines executed by call() (each pass through a loop counts): a
    measure of its work that a busy machine does not change."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Callable[..., Any]:
        nonlocal count
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        call()
    finally:
        sys.settrace(None)
    return count
