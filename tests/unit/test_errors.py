"""greenpipe.errors.run_main: one line on stderr and the right exit code."""

from __future__ import annotations

import io
import logging

import pytest

from greenpipe.config import ConfigError
from greenpipe.errors import (
    DataError,
    GreenpipeError,
    StageFailed,
    UsageError,
    console_without_tracebacks,
    exit_code_for,
    one_line,
    run_main,
)


def _raising(exc: BaseException):
    def main(argv):
        raise exc

    return main


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("GREENPIPE_DEBUG", raising=False)


@pytest.mark.parametrize(
    "exc, code, prefix",
    [
        (ConfigError("unknown key 'train.epochz'"), 2, "greenpipe config error: "),
        (UsageError("not a greenpipe repo"), 2, "greenpipe usage error: "),
        (GreenpipeError("the stage failed"), 1, "greenpipe error: "),
        (DataError("data file missing"), 1, "greenpipe error: "),
        (FileNotFoundError("no such file: x.npz"), 1, "greenpipe error: "),
    ],
)
def test_known_errors_print_one_line_and_exit(exc, code, prefix, capsys):
    with pytest.raises(SystemExit) as ei:
        run_main(_raising(exc), [])
    assert ei.value.code == code
    err = capsys.readouterr().err
    assert err.startswith(prefix) and str(exc) in err
    assert err.count("\n") == 1 and err.endswith("\n")
    assert "GREENPIPE_DEBUG" not in err


def test_unexpected_error_is_one_line_with_exit_1(capsys):
    with pytest.raises(SystemExit) as ei:
        run_main(_raising(ValueError("multi\nline  message")), [])
    assert ei.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("greenpipe error: ") and "multi line message" in err
    assert "GREENPIPE_DEBUG=1" in err


def test_debug_env_reraises_unexpected_errors(monkeypatch, capsys):
    monkeypatch.setenv("GREENPIPE_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run_main(_raising(ZeroDivisionError("boom")), [])
    assert capsys.readouterr().err == ""


def test_debug_env_does_not_change_known_errors(monkeypatch):
    monkeypatch.setenv("GREENPIPE_DEBUG", "1")
    with pytest.raises(SystemExit) as ei:
        run_main(_raising(ConfigError("bad")), [])
    assert ei.value.code == 2


def test_keyboard_interrupt_exits_130(capsys):
    with pytest.raises(SystemExit) as ei:
        run_main(_raising(KeyboardInterrupt()), [])
    assert ei.value.code == 130
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("returned, code", [(None, 0), (0, 0), (3, 3)])
def test_return_value_becomes_the_exit_code(returned, code):
    seen = []

    def main(argv):
        seen.append(argv)
        return returned

    with pytest.raises(SystemExit) as ei:
        run_main(main, ["--flag", "x"])
    assert ei.value.code == code
    assert seen == [["--flag", "x"]]


def test_one_line_falls_back_to_the_class_name():
    assert one_line(GreenpipeError("")) == "greenpipe error: GreenpipeError"
    assert one_line(ConfigError("a\n  b")) == "greenpipe config error: a b"


@pytest.mark.parametrize(
    "tail, code, message",
    [
        ("Epoch 3\rEpoch 4\ngreenpipe error: data.path 'x.npz' is empty\n", 1, "data.path 'x.npz'"),
        ("greenpipe config error: unknown key 'train.epochz'\n", 2, "unknown key"),
        ("Traceback ...\nKilled\n", 255, "Killed"),
        ("", 255, "no output"),
    ],
)
def test_stage_failed_takes_the_stage_line_and_its_exit_status(tail, code, message):
    exc = StageFailed.from_stderr("prepare", tail, 255)
    assert exc.code == code and exit_code_for(exc) == (2 if code == 2 else 1)
    text = one_line(exc)
    assert text.startswith(f"greenpipe error: stage 'prepare' failed (exit {code}): {message}")
    assert text.count("greenpipe") == 1  # the stage's own prefix is not repeated


def test_console_log_lines_lose_their_traceback_unless_debug(monkeypatch):
    class PrefectConsoleHandler(logging.StreamHandler):  # stands in for Prefect's, by name
        pass

    class Other(logging.StreamHandler):
        pass

    console, other = PrefectConsoleHandler(io.StringIO()), Other(io.StringIO())
    log = logging.getLogger("greenpipe-test-console")
    for h in (console, other):
        h.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        log.addHandler(h)
    try:
        console_without_tracebacks()
        try:
            raise StageFailed("train", 1, "out of memory")
        except StageFailed:
            log.error("Task run failed", exc_info=True)
        assert console.stream.getvalue() == "ERROR Task run failed\n"
        assert "Traceback" in other.stream.getvalue()  # other handlers keep the record whole
        monkeypatch.setenv("GREENPIPE_DEBUG", "1")
        fresh = PrefectConsoleHandler(io.StringIO())
        log.addHandler(fresh)
        console_without_tracebacks()
        log.error("again", exc_info=(StageFailed, StageFailed("t", 1, "x"), None))
        assert "StageFailed" in fresh.stream.getvalue()
    finally:
        for h in list(log.handlers):
            log.removeHandler(h)
