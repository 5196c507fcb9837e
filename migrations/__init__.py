"""The store's Alembic migrations. A package, so that the wheel carries them and an installed
qabot migrates its database from any folder (`alembic.ini` is only for developers)."""

from pathlib import Path

# Alembic's `script_location`: this folder, wherever the package is installed.
SCRIPT_LOCATION = Path(__file__).resolve().parent
