"""The environment of the processes the bot starts (the model process, training workers)."""

from __future__ import annotations

import os

# Where programs and temporary files are, the locale, and the numeric libraries' settings.
_PASSED_VARIABLES = frozenset({
    "PATH", "HOME", "USER", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "SYSTEMROOT",
    "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHASHSEED", "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
})  # fmt: skip
_PASSED_PREFIXES = ("LC_", "TF_", "KERAS_")


def child_environment() -> dict[str, str]:
    """The few variables of the bot's environment its worker processes need: they read and
    write only model files, so the bot token, the webhook secret and the database URL (with its
    password) stay out, as do any other secrets an operator's environment holds."""
    return {
        name: value
        for name, value in os.environ.items()
        if name in _PASSED_VARIABLES or name.startswith(_PASSED_PREFIXES)
    }
