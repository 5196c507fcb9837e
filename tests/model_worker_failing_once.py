"""A model process that exits at once while the file named by QABOT_TEST_FAIL_ONCE exists
(deleting it), and otherwise serves as model.worker does: its first restart fails."""

import os
import sys
from pathlib import Path

from model.worker import main

MARKER = Path(os.environ["QABOT_TEST_FAIL_ONCE"])

if MARKER.exists():
    MARKER.unlink()
    sys.exit(3)
main()
