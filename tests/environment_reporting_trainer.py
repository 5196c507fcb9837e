"""A training worker that reports its environment and CPU priority as a progress event, then
fails (for the tests that the worker gets no secrets and runs in the background)."""

import json
import os
import sys
import threading

# A thread started by the worker, as its libraries start theirs: its priority is its own.
niceness: dict[str, int] = {}


def report_own_niceness() -> None:
    niceness["thread"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


thread = threading.Thread(target=report_own_niceness)
thread.start()
thread.join()
event = {
    "event": "environment",
    "variables": dict(os.environ),
    "niceness": {"process": os.getpriority(os.PRIO_PROCESS, 0), **niceness},
}
print(json.dumps(event), flush=True)
sys.exit(1)
