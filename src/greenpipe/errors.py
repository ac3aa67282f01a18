"""Errors that reach the user as one line, and the exit codes they map to."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
from collections.abc import Callable

from greenpipe.config import ConfigError

EXIT_RUNTIME = 1
EXIT_USAGE = 2


class GreenpipeError(RuntimeError):
    """A run-time failure with a message that names the problem and the fix (exit code 1)."""


class UsageError(GreenpipeError):
    """The command was used wrongly (wrong folder, missing set-up): exit code 2."""


class DataError(GreenpipeError):
    """Input data that cannot be used: missing, empty, unreadable or of the wrong shape."""


class StageFailed(GreenpipeError):
    """A stage run by the flow failed: its own one-line error and exit status (2 for a
    usage or config error, which retries cannot fix), or the signal that killed it."""

    def __init__(self, stage: str, code: int, line: str, signum: int | None = None) -> None:
        if signum is None:
            super().__init__(f"stage '{stage}' failed (exit {code}): {line}")
        else:
            super().__init__(
                f"stage '{stage}' was killed by signal {signum} ({_signame(signum)}); {line}"
            )
        self.stage, self.code, self.signum = stage, code, signum

    @classmethod
    def from_stderr(cls, stage: str, stderr_tail: str, dvc_code: int) -> StageFailed:
        """From the tail of the stage's stderr, ending with DVC's error line, and DVC's exit
        status (the flow runs DVC in-process and writes that line from DVC's exception).

        DVC exits 255 for any failed stage and names the stage's own status on its error
        line (`ERROR: failed to reproduce '<stage>': failed to run: <cmd>, exited with N`):
        -N when the signal N killed the stage's process, 128+N when the shell that ran it
        reports that signal (dash forks the command; bash execs it). The stage's own last
        line says what kind of failure it was: "greenpipe config error: ..." (or usage)
        exited 2, "greenpipe error: ..." 1. Without one, the signal if any, else the
        stage's status and its last line."""
        lines = [ln for ln in stderr_tail.replace("\r", "\n").splitlines() if ln.strip()]
        dvc_lines = [ln for ln in lines if ln.startswith(DVC_FAILED)]
        stage_lines = [ln for ln in lines if not ln.startswith(DVC_FAILED)]
        line = next((ln for ln in reversed(stage_lines) if ln.startswith("greenpipe")), None)
        m = re.match(r"greenpipe (?:(config|usage) )?error: ", line or "")
        if m is not None:
            return cls(stage, EXIT_USAGE if m.group(1) else EXIT_RUNTIME, line[m.end() :])
        status = _stage_status(dvc_lines[-1]) if dvc_lines else None
        signum = _signal_of(status if status is not None else dvc_code)
        if signum is not None:
            return cls(stage, 128 + signum, _KILLED_FIX.get(signum, _RERUN), signum)
        last = line or (stage_lines[-1] if stage_lines else "no output")
        return cls(stage, dvc_code if status is None else status, last)


DVC_FAILED = "ERROR: failed to reproduce "  # DVC's own line about a failed stage
_RERUN = "run it again once the cause is gone (greenpipe run or dvc repro)"
_KILLED_FIX = {  # who sends it, most often
    9: "often the kernel's out-of-memory killer (see dmesg); " + _RERUN,
    2: "interrupted (Ctrl-C); " + _RERUN,
    15: "stopped by another process; " + _RERUN,
}


def _signame(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown signal"


def _stage_status(dvc_line: str) -> int | None:
    """The stage command's exit status on DVC's error line, if DVC ran it."""
    m = re.search(r"failed to run: .*, exited with (-?\d+)\s*$", dvc_line)
    return int(m.group(1)) if m else None


def _signal_of(status: int) -> int | None:
    """The signal a process exit status reports: -N (Python's Popen), 128+N (a shell's)."""
    signum = -status if status < 0 else status - 128 if status > 128 else None
    valid = signum is not None and signum in {s.value for s in signal.Signals}
    return signum if valid else None


def debug() -> bool:
    """GREENPIPE_DEBUG=1: tracebacks are shown (errors and orchestrator logs)."""
    return os.environ.get("GREENPIPE_DEBUG", "").lower() in ("1", "true", "yes")


def exit_code_for(exc: BaseException) -> int:
    """2 for usage and configuration problems (and stages that failed with one), 1 for
    run-time failures."""
    if isinstance(exc, StageFailed):
        return EXIT_USAGE if exc.code == EXIT_USAGE else EXIT_RUNTIME
    return EXIT_USAGE if isinstance(exc, ConfigError | UsageError) else EXIT_RUNTIME


class _NoTraceback(logging.Formatter):
    """Another formatter's output without the record's traceback or stack."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return self.inner.format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def console_without_tracebacks(handler_class: str = "PrefectConsoleHandler") -> None:
    """The orchestrator's console log lines keep their message but lose the traceback (a
    failed stage is already one line: its own error), unless GREENPIPE_DEBUG=1. Other
    handlers (Prefect's API log, shown in its UI) keep the whole record."""
    if debug():
        return
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    for lg in loggers:
        for h in lg.handlers:
            if type(h).__name__ == handler_class and not isinstance(h.formatter, _NoTraceback):
                h.setFormatter(_NoTraceback(h.formatter or logging.Formatter()))


def one_line(exc: BaseException) -> str:
    """The error as a single line: `<Kind>: <message>`."""
    msg = " ".join(str(exc).split()) or exc.__class__.__name__
    kind = {ConfigError: "config error", UsageError: "usage error"}.get(type(exc), "error")
    return f"greenpipe {kind}: {msg}"


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run an entry point; known errors print one line to stderr and exit non-zero."""
    try:
        code = main(argv)
    except (ConfigError, GreenpipeError, FileNotFoundError, PermissionError) as exc:
        print(one_line(exc), file=sys.stderr)
        sys.exit(exit_code_for(exc))
    except Exception as exc:  # anything else: still one line, traceback on request
        if debug():
            raise
        print(one_line(exc) + " (set GREENPIPE_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(EXIT_RUNTIME)
    except KeyboardInterrupt:
        print("greenpipe: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
