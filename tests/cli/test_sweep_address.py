"""`greenpipe sweep --address` with a cluster that cannot be used: one line naming the problem
and the fix, exit 2, before anything runs (the cluster itself: tests/e2e/test_sweep_cluster.py)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GREENPIPE = str(Path(sys.executable).parent / "greenpipe")


def _repo(tmp: Path) -> Path:
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy2(ROOT / name, tmp / name)
    (tmp / "plan.yaml").write_text("grid:\n  evaluate.bootstrap_samples: [110, 120]\n")
    return tmp


def _sweep(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GREENPIPE_"))}
    return subprocess.run(
        [GREENPIPE, "sweep", "plan.yaml", *args],
        cwd=_repo(tmp),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(proc) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_scheduler_at_the_address_exits_2(tmp_path):
    address = f"tcp://127.0.0.1:{_closed_port()}"
    proc = _sweep(tmp_path, "--address", address)
    assert proc.returncode == 2
    line = _one_line(proc)
    assert f"--address {address}: no Dask scheduler answers there" in line
    assert "start `dask scheduler`" in line


def test_address_with_the_thread_runner_exits_2(tmp_path):
    proc = _sweep(tmp_path, "--address", "tcp://127.0.0.1:8786", "--runner", "threads")
    assert proc.returncode == 2 and "--address is a Dask scheduler" in _one_line(proc)
