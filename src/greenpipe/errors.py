"""Errors that reach the user as one line, and the exit codes they map to."""

from __future__ import annotations

import os
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


def exit_code_for(exc: BaseException) -> int:
    """2 for usage and configuration problems, 1 for run-time failures."""
    return EXIT_USAGE if isinstance(exc, ConfigError | UsageError) else EXIT_RUNTIME


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
        if os.environ.get("GREENPIPE_DEBUG", "").lower() in ("1", "true", "yes"):
            raise
        print(one_line(exc) + " (set GREENPIPE_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(EXIT_RUNTIME)
    except KeyboardInterrupt:
        print("greenpipe: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
