"""A scratch copy of the repo (git + DVC initialised) for benchmarks, with params overrides."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from greenpipe.flows.verify import repo_files
from greenpipe.sweep import apply

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("data/", "models/", "metrics/", "plots/", "reports/", "dvc.lock", "mlflow.db")


def env() -> dict[str, str]:
    out = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "GREENPIPE_", "PREFECT_API"))
    }
    out["PATH"] = str(Path(sys.executable).parent) + os.pathsep + out.get("PATH", "")
    out.update(
        {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DVC_NO_ANALYTICS": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@localhost",
        }
    )
    return out


# the temporary API server's start, once, in a fresh home: it creates the database
_CREATE_DB = (
    "from prefect.server.api.server import SubprocessASGIServer as S\n"
    "s = S(); s.start(timeout=180); s.stop()\n"
)
_prefect_home: Path | None = None


def prefect_home() -> Path:
    """One Prefect home for every run of this benchmark process, its database created before
    any timed run: the state of a machine that has run Prefect before (~/.prefect). With a
    fresh home per workspace, every `greenpipe run` paid the database's creation (Prefect's
    migrations: its temporary server took 12-14 s to answer here, against 5 s with the
    database in place), which a user pays once per machine. Removed at exit."""
    global _prefect_home
    if _prefect_home is None:
        home = Path(tempfile.mkdtemp(prefix="greenpipe-bench-prefect-"))
        atexit.register(shutil.rmtree, home, ignore_errors=True)
        e = env() | {"PREFECT_HOME": str(home)}
        subprocess.run([sys.executable, "-c", _CREATE_DB], env=e, check=True, capture_output=True)
        _prefect_home = home
    return _prefect_home


def make(overrides: dict | None = None) -> Path:
    """A fresh committed copy of the repo's sources under a temporary folder."""
    ws = Path(tempfile.mkdtemp(prefix="greenpipe-bench-"))
    files = repo_files(ROOT)
    for rel in files:
        if rel.startswith(OUTPUTS):
            continue
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, ws / rel)
    raw = yaml.safe_load((ws / "params.yaml").read_text())
    raw = apply(raw, overrides or {})
    (ws / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    e = env()
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(cmd, cwd=ws, env=e, check=True, capture_output=True)
    return ws


def run(ws: Path, *cmd: str) -> subprocess.CompletedProcess:
    e = env()
    e["PREFECT_HOME"] = str(prefect_home())
    # each workspace compiles cold: with the shared default Inductor cache (/tmp), whichever
    # side ran second reused the other's AOTInductor builds in optimize@torch
    e["TORCHINDUCTOR_CACHE_DIR"] = str(ws / ".inductor-cache")
    proc = subprocess.run(cmd, cwd=ws, env=e, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def stage_metrics(ws: Path) -> dict[str, dict]:
    """{stage: its metrics file} of the stages that wrote one in WS: metrics/<stage>.json,
    and metrics/models/<backend>/<stage>.json for <stage>@<backend>."""
    out = {}
    for path in sorted((ws / "metrics").rglob("*.json")):
        rel = path.relative_to(ws / "metrics").with_suffix("")
        name = "@".join(reversed(rel.parts[1:])) if rel.parts[0] == "models" else rel.name
        out[name] = json.loads(path.read_text())
    return out


def plan_overrides(plan: str | None, sets: list[str] = ()) -> dict:
    """The overrides of PLAN's single variant (none without a plan), then KEY=VALUE sets."""
    from greenpipe.sweep import load_plan

    out: dict = {}
    if plan:
        raw = yaml.safe_load((ROOT / "params.yaml").read_text())
        _, variants = load_plan(plan, raw)
        if len(variants) != 1:
            raise SystemExit(f"--plan {plan} has {len(variants)} variants; give a plan with one")
        out.update(variants[0].overrides)
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"--set {item!r} is not KEY=VALUE; write e.g. --set distill.epochs=3")
        out[key] = yaml.safe_load(value)
    return out
