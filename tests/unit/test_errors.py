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


DVC_LINE = "ERROR: failed to reproduce 'train@tensorflow': failed to run: python t.py, exited with "
BAR = "train teacher [tensorflow]:   2%|2         | 1/50\r"


@pytest.mark.parametrize(
    "tail, dvc_code, signum",
    [
        (BAR + DVC_LINE + "-9\n", 255, 9),  # bash execs the cmd: DVC sees -9
        (BAR + "Killed\n" + DVC_LINE + "137\n", 255, 9),  # dash forks it and exits 128 + 9
        (BAR + DVC_LINE + "-15\n", 255, 15),
        (BAR, -9, 9),  # dvc itself was killed
    ],
)
def test_a_stage_killed_by_a_signal_says_so_not_its_last_progress_line(tail, dvc_code, signum):
    import signal

    exc = StageFailed.from_stderr("train@tensorflow", tail, dvc_code)
    name = signal.Signals(signum).name
    assert str(exc).startswith(f"stage 'train@tensorflow' was killed by signal {signum} ({name}); ")
    assert "2%" not in str(exc) and "run it again" in str(exc)
    assert (exc.signum, exc.code, exit_code_for(exc)) == (signum, 128 + signum, 1)


def test_the_stage_line_wins_over_dvc_and_a_bare_failure_keeps_the_stage_status():
    tail = "greenpipe config error: unknown key 'x'\n" + DVC_LINE + "2\n"
    assert StageFailed.from_stderr("s", tail, 255).code == 2
    exc = StageFailed.from_stderr("s", "Traceback\nImportError: no torch\n" + DVC_LINE + "1\n", 255)
    assert str(exc) == "stage 's' failed (exit 1): ImportError: no torch"
    exc = StageFailed.from_stderr("s", "ERROR: Unable to acquire lock\n", 255)
    assert str(exc) == "stage 's' failed (exit 255): ERROR: Unable to acquire lock"
    assert StageFailed.from_stderr("s", DVC_LINE + "200\n", 255).signum is None  # 128+72: none


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
