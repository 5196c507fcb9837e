"""A training worker that reports its environment as a progress event, then fails (for the test
that the worker gets no secrets)."""

import json
import os
import sys

print(json.dumps({"event": "environment", "variables": dict(os.environ)}), flush=True)
sys.exit(1)
