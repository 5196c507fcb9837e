"""Every module imports alone, in a fresh interpreter: no import cycles between the layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def project_modules() -> list[str]:
    modules = []
    for package in ("bot", "model", "migrations"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "versions" in parts:  # Alembic revisions are loaded by Alembic, not imported
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts[-1] == "env" and parts[0] == "migrations":  # runs only inside Alembic
                continue
            modules.append(".".join(parts))
    return modules


@pytest.mark.slow  # a fresh interpreter per module: a few minutes on a busy machine
def test_every_module_imports_alone() -> None:
    script = (
        "import importlib, subprocess, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    code = 'import importlib; importlib.import_module(%r)' % name\n"
        "    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)\n"
        "    if done.returncode:\n"
        "        failed.append(name + ': ' + done.stderr.strip().splitlines()[-1])\n"
        "print('\\n'.join(failed))\n"
    )
    modules = project_modules()
    assert "bot.telegram.rate_limit" in modules and "bot.app.app" in modules
    result = subprocess.run(
        [sys.executable, "-c", script, *modules], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", result.stdout


@pytest.mark.parametrize("layer", ["bot.storage", "bot.serving", "model"])
def test_lower_layers_do_not_import_the_front_ends(layer: str) -> None:
    """Storage, serving and the model know nothing of Telegram, the console or the CLI."""
    folder = ROOT / layer.replace(".", "/")
    offenders = [
        f"{path.relative_to(ROOT)}: {line.strip()}"
        for path in folder.rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.lstrip().startswith(("from bot.telegram", "import bot.telegram", "from bot.cli"))
        or line.lstrip().startswith(("from bot.app", "from bot.console"))
    ]
    assert offenders == []


def test_the_application_layer_builds_no_query() -> None:
    """SQL is written in bot/storage: the application modules import no SQLAlchemy when they
    run (a row type for annotations, imported under TYPE_CHECKING, is indented and allowed)."""
    offenders = [
        f"{path.relative_to(ROOT)}: {line}"
        for path in (ROOT / "bot" / "app").rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith(("from sqlalchemy", "import sqlalchemy"))
    ]
    assert offenders == []
