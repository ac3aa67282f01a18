"""Session-wide: no background logger outlives the tests."""

from __future__ import annotations

import time


def pytest_sessionfinish(session, exitstatus):
    """Stages run by the tests start detached run-record loggers
    (greenpipe.tracking.recorder), which end a few seconds after their last record: wait for
    them (30 s at most), then stop any left, so that nothing runs on after the tests."""
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: the other workers' tests may still use their loggers
    import psutil

    def loggers():
        found = []
        for p in psutil.process_iter(["cmdline"]):
            cmd = p.info.get("cmdline") or []
            if "greenpipe.tracking.recorder" in cmd:
                found.append(p)
        return found

    deadline = time.time() + 30
    while loggers() and time.time() < deadline:
        time.sleep(0.5)
    for p in loggers():
        p.terminate()
