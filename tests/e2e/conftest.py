"""A throw-away copy of the repo (git + DVC initialised, reduced params) for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenpipe.flows import verify

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = ("data/", "models/", "metrics/", "plots/", "reports/", "dvc.lock", "mlflow.db")

SMALL = {
    "augment": {"factor": 2},
    "train": {"epochs": 4, "patience": 2, "model": {"cnn": {"channels": [16, 32], "hidden": 256}}},
    "distill": {"epochs": 4, "patience": 2, "model": {"cnn": {"channels": [8, 16], "hidden": 32}}},
    "evaluate": {
        "warmup": 2,
        "latency_runs": 10,
        "energy_inferences": 1000,
        "energy_repeats": 1,
        "energy_min_seconds": 0.5,
        "peak_memory": False,
        "bootstrap_samples": 100,
    },
    # AOTInductor compiles for tens of seconds: tests/unit/optimize/test_runtimes.py covers it
    "optimize": {
        "calibration_samples": 64,
        "prune": {"fine_tune_epochs": 2},
        "runtimes": ["onnxruntime"],
    },
}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def repo_files(root: Path) -> list[str]:
    """Tracked and new (not ignored) files of the repo, without pipeline outputs."""
    return [f for f in verify.repo_files(root) if not f.startswith(OUTPUTS)]


def tool_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "GREENPIPE_", "PREFECT_", "DVC_EXP"))
    }
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.update(
        {
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            "DVC_NO_ANALYTICS": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@localhost",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@localhost",
        }
    )
    return env


class Workspace:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env

    def run(self, *cmd: str, check: bool = True, timeout: int = 900):
        proc = subprocess.run(
            cmd, cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{cmd} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text())

    def write_params(self, raw: dict) -> None:
        (self.path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))

    def mlflow(self):
        """The workspace's MLflow store, once every stage run record is logged to it (under
        plain `dvc repro` the detached logger may still be logging the last ones)."""
        from mlflow.tracking import MlflowClient

        from greenpipe.tracking import recorder, records

        recorder.flush(records.folder(self.path, {}))
        return MlflowClient(f"sqlite:///{self.path / 'mlflow.db'}")

    def runs(self) -> list:
        client = self.mlflow()
        exp = client.get_experiment_by_name(self.params()["experiment"])
        if exp is None:
            return []
        return client.search_runs([exp.experiment_id], max_results=1000)


def make_workspace(base: Path) -> Workspace:
    ws_path = base / "repo"
    for rel in repo_files(ROOT):
        dest = ws_path / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    ws = Workspace(ws_path, tool_env(base))
    ws.write_params(_merge(ws.params(), SMALL))
    ws.run("git", "init", "-q")
    ws.run("git", "add", "-A")
    ws.run("git", "commit", "-qm", "e2e workspace")
    return ws


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    """One workspace for the whole session: test_pipeline runs the pipeline in it, then
    test_serve and test_sweep start from those results (pytest runs the files in that order;
    each also works alone, it then computes what it needs)."""
    return make_workspace(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="module")
def own_workspace(tmp_path_factory) -> Workspace:
    """A workspace of the test module's own, for tests that must see every stage run."""
    return make_workspace(tmp_path_factory.mktemp("e2e-own"))


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 900


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's chromium + chromium-driver) at a 1280x900 viewport, driven
    by Selenium with both paths given (Selenium Manager downloads nothing); quit when done.
    Skipped where they are missing, never in CI (`make test` installs them as root)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and os.environ.get("CI") != "true":
        pytest.skip(
            "needs Debian's chromium and chromium-driver (/usr/bin/chromium, "
            "/usr/bin/chromedriver): apt-get install -y chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        # the viewport itself 1280 px wide, whatever the window decorations take
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()
