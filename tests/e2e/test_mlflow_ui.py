"""The MLflow UI, served by the real `mlflow server` and opened in headless Chromium: the link
greenpipe prints opens the experiment on its runs table, where the parent run is listed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from greenpipe.tracking import runs

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("mlflow_ui")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_ui(tmp_path_factory):
    """A store with greenpipe's experiment and one parent run, and `mlflow server` on it."""
    root = tmp_path_factory.mktemp("mlflow-ui")
    tracking = SimpleNamespace(mlflow_uri="sqlite:///mlflow.db", artifact_dir="mlartifacts")
    store = runs.open_store(tracking, "greenpipe-ui-test", root)
    parent = runs.create_parent(store, "greenpipe run ui-probe", "manual", {"seed": 0}, {})
    store.client.set_terminated(parent, "FINISHED")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1"]
        + ["--port", str(port), "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"],
        cwd=root,
        env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(1)
        else:
            raise AssertionError("mlflow server did not answer /health")
        yield SimpleNamespace(uri=base, store=store, parent=parent)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _page_text(browser, url: str, needle: str, timeout: float = 60) -> str:
    browser.get(url)
    deadline, text = time.time() + timeout, ""
    while time.time() < deadline:
        text = browser.find_element("tag name", "body").text
        if needle in text:
            break
        time.sleep(0.5)
    return text


def test_the_printed_link_opens_the_runs_table(browser, mlflow_ui):
    url = runs.experiment_url(mlflow_ui.uri, mlflow_ui.store.exp_id)
    text = _page_text(browser, url, "greenpipe run ui-probe")
    assert "greenpipe run ui-probe" in text and "Run Name" in text, text[:2000]
    assert "Token Usage" not in text  # not the GenAI overview
    run_page = runs.run_url(
        runs.Store(None, mlflow_ui.store.exp_id, mlflow_ui.uri), mlflow_ui.parent
    )
    text = _page_text(browser, run_page, "seed")
    assert "greenpipe run ui-probe" in text and "seed" in text, text[:2000]


def test_without_the_view_parameter_mlflow_opens_its_genai_view(browser, mlflow_ui):
    """Why the link carries it: the experimentKind tag alone does not choose the view in
    MLflow 3.17 (a fresh browser profile is in the GenAI view)."""
    browser.execute_script("window.localStorage.clear()")
    url = f"{mlflow_ui.uri}/#/experiments/{mlflow_ui.store.exp_id}"
    text = _page_text(browser, url, "Token Usage")
    assert "Token Usage" in text, text[:2000]
    exp = mlflow_ui.store.client.get_experiment(mlflow_ui.store.exp_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
