"""greenpipe.errors.run_main: one line on stderr and the right exit code."""

from __future__ import annotations

import pytest

from greenpipe.config import ConfigError
from greenpipe.errors import DataError, GreenpipeError, UsageError, one_line, run_main


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
