"""Stage servers (greenpipe.flows.stage_server and servers): a served script runs as a fresh
interpreter would run it (argv, cwd, environment, streams, exit status, the signal that killed
it), in a fork of a server that had already imported its imports; anything else is exec'ed
unchanged; a server that cannot start is a one-line error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from greenpipe.errors import GreenpipeError
from greenpipe.flows import stage_server
from greenpipe.flows.servers import StageServers, served_scripts
from greenpipe.tracking import stage as tracking_stage

SCRIPT = """
import json, os, sys
import marker_mod
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "pid": os.getpid(), "x": os.environ.get("X"),
    "servers": os.environ.get("GREENPIPE_STAGE_SERVERS"), "path": os.environ["PATH"],
    "path0": sys.path[0], "marker_pid": marker_mod.PID, "main": __name__,
    "preloaded": os.environ.get("GREENPIPE_PRELOADED_RSS_MB"),
}))
print("to stderr", file=sys.stderr)
if "--kill" in sys.argv:
    os.kill(os.getpid(), 9)
if "--raise" in sys.argv:
    raise ValueError("boom")
sys.exit(int(os.environ.get("CODE", "0")))
"""


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """What the stages here import is learned into the test's own cache folder."""
    monkeypatch.setenv("GREENPIPE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def served(tmp_path):
    """A stage server for tmp/stage.py (and its marker_mod import), and its stage env."""
    (tmp_path / "stage.py").write_text(SCRIPT)
    (tmp_path / "other.py").write_text("print('not served')\n")
    # records which process imported it: the server, once, if it preloads
    (tmp_path / "marker_mod.py").write_text("import os\nPID = os.getpid()\n")
    base = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base['PATH']}"
    with StageServers({"s": (str(tmp_path), "python stage.py --a 1")}, base) as servers:
        assert list(servers.procs) == ["base"]  # the tests below go through it
        yield tmp_path, servers.stage_env(base)


def _sh(ws: Path, env: dict, cmd: str, **extra) -> subprocess.CompletedProcess:
    """The command as DVC runs it: `$SHELL -c CMD` with the stage env."""
    return subprocess.run(
        ["/bin/sh", "-c", cmd], cwd=ws, env={**env, **extra}, capture_output=True, text=True
    )


def test_a_served_script_sees_what_a_fresh_interpreter_would(served):
    ws, env = served
    first = _sh(ws, env, "python stage.py --a 1", X="hello")
    second = _sh(ws, env, "python stage.py --a 2", CODE="3")
    assert first.returncode == 0 and second.returncode == 3
    assert first.stderr == "to stderr\n" == second.stderr
    a, b = json.loads(first.stdout), json.loads(second.stdout)
    assert a["argv"] == ["stage.py", "--a", "1"] and b["argv"] == ["stage.py", "--a", "2"]
    assert a["cwd"] == str(ws) and a["path0"] == str(ws) and a["main"] == "__main__"
    assert a["x"] == "hello" and b["x"] is None  # each request's own environment
    # the stage's env is the one it would have without a server: no shim, no socket folder
    assert a["servers"] is None and "greenpipe-stages-" not in a["path"]
    # its imports were preloaded: one import, in the server, before either stage
    assert a["marker_pid"] == b["marker_pid"] != a["pid"] != b["pid"]
    assert float(a["preloaded"]) > 10  # MiB the server had resident when it forked


def test_exit_by_signal_and_uncaught_error_are_the_stages_own(served):
    ws, env = served
    # exec'ed by the shell, the shim is the process DVC waits on: it dies of the same signal
    killed = subprocess.run(
        ["python", "stage.py", "--kill"], cwd=ws, env=env, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL
    failed = _sh(ws, env, "python stage.py --raise")
    assert failed.returncode == 1 and failed.stderr.rstrip().endswith("ValueError: boom")


def test_other_python_commands_run_unchanged(served):
    ws, env = served
    other = _sh(ws, env, "python other.py")  # a script no server preloaded
    assert other.returncode == 0 and other.stdout == "not served\n"
    code = _sh(ws, env, "python -c 'import sys; print(sys.executable)'")
    assert code.returncode == 0 and code.stdout.strip() == sys.executable


def test_servers_end_with_the_run(tmp_path):
    (tmp_path / "stage.py").write_text("print('x')\n")
    with StageServers({"s": (str(tmp_path), "python stage.py")}, dict(os.environ)) as servers:
        servers.stage_env(dict(os.environ))
        procs = list(servers.procs.values())
        folder = Path(servers.folder)
    assert all(p.poll() is not None for p in procs) and not folder.exists()


def test_a_server_that_cannot_start_is_a_one_line_error(tmp_path):
    (tmp_path / "stage.py").write_text("print('x')\n")
    env = dict(os.environ, PYTHONHOME="/nonexistent")  # the server's interpreter cannot start
    servers = StageServers({"s": (str(tmp_path), "python stage.py --backend torch")}, env)
    with servers, pytest.raises(GreenpipeError, match="stage server for the torch stages ended"):
        servers.stage_env(env)


def test_a_second_stage_env_reuses_the_ready_servers(tmp_path):
    (tmp_path / "stage.py").write_text("print('x')\n")
    base = dict(os.environ)
    with StageServers({"s": (str(tmp_path), "python stage.py")}, base) as servers:
        first = servers.stage_env(base)
        second = servers.stage_env(dict(base, X="1"))  # no second "ready" to read: no wait
        assert second["PATH"] == first["PATH"] and second["X"] == "1"
        ran = _sh(tmp_path, second, "python stage.py")
    assert ran.returncode == 0 and ran.stdout == "x\n"


def test_a_server_that_goes_quiet_is_stopped_not_waited_on(tmp_path, monkeypatch):
    servers = StageServers({}, dict(os.environ))
    # a process that closes its output without "ready" and stays alive
    quiet = "import os, time; os.close(1); time.sleep(60)"
    servers.procs["torch"] = subprocess.Popen(
        [sys.executable, "-c", quiet], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    monkeypatch.setattr(StageServers, "GRACE_S", 0.5)
    with servers, pytest.raises(GreenpipeError, match="closed its output unready and was stopped"):
        servers.stage_env(dict(os.environ))
    assert servers.procs["torch"].returncode is not None  # stopped, not left running


def test_switched_off_no_server_starts_and_a_bad_switch_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(stage_server.SWITCH_ENV, "off")
    with StageServers({"s": (str(tmp_path), "python stage.py")}, {}) as servers:
        assert servers.procs == {} and servers.stage_env({"PATH": "p"}) == {"PATH": "p"}
    monkeypatch.setenv(stage_server.SWITCH_ENV, "maybe")
    with pytest.raises(GreenpipeError, match="set it to 'on' or 'off'"):
        StageServers({}, {})


def test_one_server_per_framework_and_one_for_the_rest():
    plan = served_scripts(
        {
            "prepare": ("/r", "python pipelines/prepare.py --out x"),
            "train@torch": ("/r", "python pipelines/train.py --backend torch --data d"),
            "train@tf": ("/r", "python pipelines/train.py --backend=tensorflow"),
            "evaluate@torch": ("/r", "python3 pipelines/evaluate.py --backend torch"),
            "shell": ("/r", "echo hi"),
            "module": ("/r", "python -m something"),
            "multi": ("/r", ["python pipelines/a.py", "python pipelines/b.py"]),
        }
    )
    assert plan == {
        "base": ["/r/pipelines/prepare.py"],
        "torch": ["/r/pipelines/train.py", "/r/pipelines/evaluate.py"],
        "tensorflow": ["/r/pipelines/train.py"],
    }


def test_a_scripts_top_level_imports_are_read_not_run(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(
        textwrap.dedent(
            """
            from __future__ import annotations
            import os, json as j
            from greenpipe.entry import stage
            from . import relative
            raise SystemExit("never run")
            def f():
                import inside
            """
        )
    )
    names = stage_server.imports_of(str(script))
    assert names == ["os", "json", "greenpipe.entry", "greenpipe.entry.stage"]


def test_the_stage_records_the_memory_its_server_preloaded(monkeypatch):
    monkeypatch.delenv(stage_server.PRELOADED_ENV, raising=False)
    assert set(tracking_stage.resources()) == {"peak_rss_mb"}
    monkeypatch.setenv(stage_server.PRELOADED_ENV, "321.5")
    figures = tracking_stage.resources()
    assert figures["preloaded_rss_mb"] == 321.5 and figures["peak_rss_mb"] > 0


LAZY = """
import json, os, sys
print(json.dumps({"had_this": "this" in sys.modules, "had_local": "local_mod" in sys.modules}))
def main():
    import this  # noqa: F401 - a lazy import that prints (the Zen of Python) as it is imported
    import local_mod  # noqa: F401 - the repo's own module: never learned
main()
"""


def test_what_a_stage_imported_itself_its_next_server_preloads(tmp_path):
    (tmp_path / "lazy.py").write_text(LAZY)
    (tmp_path / "local_mod.py").write_text("X = 1\n")
    base = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    learned_at = stage_server.learned_file("base")
    assert not learned_at.exists()

    def run_twice() -> list[dict]:
        with StageServers({"s": (str(tmp_path), "python lazy.py")}, base) as servers:
            env = servers.stage_env(base)
            out = [_sh(tmp_path, env, "python lazy.py") for _ in range(2)]
        assert all(r.returncode == 0 for r in out), [r.stderr for r in out]
        return [json.loads(r.stdout.splitlines()[0]) for r in out]

    first = run_twice()
    # the first server did not have it: each stage imported `this` itself (and printed it)
    assert [r["had_this"] for r in first] == [False, False]
    names = stage_server.learned(learned_at)
    assert "this" in names and "local_mod" not in names and "__main__" not in names
    second = run_twice()
    # the next server imported it before forking (its print went to stderr, not into the
    # pipe where the flow reads "ready"); the repo's own module is still the stage's own
    assert [r["had_this"] for r in second] == [True, True]
    assert [r["had_local"] for r in second] == [False, False]


def test_learned_imports_keep_what_was_known_and_skip_what_no_server_can_import(tmp_path):
    path = tmp_path / "cache" / "k.json"
    assert stage_server.learned(path) == []  # nothing learned yet
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert stage_server.learned(path) == []  # unreadable: the server preloads the rest
    path.write_text(json.dumps(["json", "an.old.one"]))
    before = frozenset(sys.modules) - {"colorsys"}
    import colorsys  # noqa: F401 - imported "by the stage"

    sys.modules["__autograph_generated_fileabc"] = type(sys)("__autograph_generated_fileabc")
    try:
        added = stage_server.learn(path, before - {"__autograph_generated_fileabc"})
    finally:
        del sys.modules["__autograph_generated_fileabc"]
    assert added == ["colorsys"]
    assert stage_server.learned(path) == ["an.old.one", "colorsys", "json"]


def _ended(servers) -> bool:
    return all(proc.poll() is not None for proc in servers.procs.values())


def test_the_flow_takes_over_the_servers_greenpipe_run_started_before_prefect(tmp_path):
    """`greenpipe run` starts its servers before it imports Prefect (start_early); the flow
    in that process serves its stages from those very processes, not a second set."""
    from greenpipe.flows import servers

    (tmp_path / "stage.py").write_text("print('served')\n")
    plan = {"s": (str(tmp_path), "python stage.py")}
    with servers.start_early(plan) as early:
        pids = {key: proc.pid for key, proc in early.procs.items()}
        assert list(pids) == ["base"] and early.early
        with servers.for_flow(dict(plan)) as taken:
            assert taken is early
            assert {key: proc.pid for key, proc in taken.procs.items()} == pids
            taken.stage_env(dict(os.environ))  # ready: the processes answered
        assert _ended(early)  # the flow ended them with its run
    assert not servers._EARLY  # noqa: SLF001
    # a flow whose plan is not the one they were started for ends them and starts its own
    with servers.start_early(plan) as early:
        other = {"t": (str(tmp_path), "python other.py")}
        (tmp_path / "other.py").write_text("print('other')\n")
        with servers.for_flow(other) as own:
            assert own is not early and not own.early and _ended(early)
            assert set(own.procs) == {"base"} and not _ended(own)
        assert _ended(own)
