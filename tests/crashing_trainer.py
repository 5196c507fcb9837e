"""A training worker that reports one epoch and then dies as if killed (for fault tests)."""

import json
import os
import signal

print(json.dumps({"event": "epoch", "epoch": 1, "epochs": 4, "loss": 1.0}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
