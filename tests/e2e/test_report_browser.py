"""reports/report.html in a real browser: the report stage (pipelines/report.py, run as DVC
runs it) on realistic metrics in J, opened in headless Chromium at 1280x900 through Selenium.

It checks what a reader sees: no sideways scroll, every picture loaded, the findings first.
Debian's chromium and chromium-driver are used as installed (.ci/run installs them); both
paths are passed to Selenium, so Selenium Manager never looks for (or downloads) a driver.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from greenpipe import artifacts

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1280, 900

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("report_browser"),  # one report stage run and one browser
]

ESTIMATED = {"cpu": "estimated:cpu_load", "gpu": "absent", "ram": "estimated:ram_size_model"}
IDLE = {"power_w": 20.8, "cpu_power_std_w": 0.031, "window_s": 5.0, "tracking_mode": "machine"}
# model: (accuracy, J per 1k inferences, file bytes, params, p50 ms) on torch; tensorflow's
# are scaled below, like a second framework of the same architecture
MODELS = {
    "teacher": (0.9721, 0.158, 623_016, 155_530, 0.124),
    "student_scratch": (0.9860, 0.0766, 91_288, 22_602, 0.166),
    "student_kd": (0.9916, 0.0736, 91_288, 22_602, 0.102),
    "student_kd_pruned": (0.9916, 0.0771, 39_300, 9_594, 0.196),
    "student_kd_int8": (0.9888, 0.111, 28_150, 22_602, 0.145),
    "student_kd_pruned_int8": (0.9888, 0.110, 14_640, 9_594, 0.147),
}
# the window that made each model (J gross): train, distill, optimize
WINDOWS = {
    "train": {"teacher": 131.8},
    "distill": {"student_kd": 99.4, "student_scratch": 46.2},
    "optimize": {
        "student_kd_int8": 2.55,
        "student_kd_pruned": 59.7,
        "student_kd_pruned_int8": 2.07,
    },
}
DATA_STAGES = {"prepare": 0.967, "clean": 130.6, "augment": 49.1, "compress": 0.432}


def _energy(joules: float, seconds: float) -> dict:
    """An energy block like metrics/<stage>.json's: 15% active, RAM-heavy, CodeCarbon-estimated."""
    return {
        "energy_j": joules,
        "active_energy_j": 0.15 * joules,
        "cpu_j": 0.2 * joules,
        "gpu_j": 0.0,
        "ram_j": 0.8 * joules,
        "emissions_g": joules * 1.56e-5,
        "duration_s": seconds,
        "tracking_mode": "machine",
        "source": dict(ESTIMATED),
        "idle": dict(IDLE),
    }


def _evaluated(backend: str, scale: float) -> dict:
    out = {}
    for name, (acc, per_1k, size, params, p50) in MODELS.items():
        acc -= (scale - 1) / 50
        out[name] = {
            "backend": backend,
            "accuracy": acc,
            "accuracy_ci_low": acc - 0.012,
            "accuracy_ci_high": min(acc + 0.008, 1.0),
            "macro_f1": acc - 0.001,
            "params": params,
            "size_bytes": int(size * scale),
            "latency_p50_ms": p50 * scale,
            "latency_p95_ms": p50 * scale * 1.4,
            "latency_batch_p50_ms": p50 * scale * 2.2,
            "latency_batch_size": 32,
            "throughput_sps": 3.0e4 / p50,
            "memory_inference_peak_mb": size / 5e4,
            "energy_per_1k_j": per_1k * scale,
            "energy_per_1k_std_j": per_1k * scale * 0.06,
            "active_energy_per_1k_j": per_1k * scale * 0.25,
        }
    return out


def write_metrics(folder: Path) -> list[str]:
    """metrics/<data stage>.json and metrics/models/<backend>/<stage>.json, in J and gCO2e;
    the --stage-metrics arguments."""
    for stage, joules in DATA_STAGES.items():
        artifacts.write_json(folder / f"{stage}.json", {"energy": _energy(joules, joules / 25)})
    for backend, scale in (("torch", 1.0), ("tensorflow", 1.3)):
        sub = folder / "models" / backend
        for stage, windows in WINDOWS.items():
            made = {
                m: {"energy_j": j * scale, "active_energy_j": 0.2 * j * scale}
                for m, j in windows.items()
            }
            total = 1.2 * sum(j for j in windows.values()) * scale
            artifacts.write_json(
                sub / f"{stage}.json", {"energy": _energy(total, total / 25), **made}
            )
        evaluate = {
            "energy": _energy(770 * scale, 30 * scale),
            "models": _evaluated(backend, scale),
        }
        artifacts.write_json(sub / "evaluate.json", evaluate)
    return [str(folder / f"{s}.json") for s in DATA_STAGES]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    """reports/report.html from the real report stage, run in a scratch folder with its own
    params.yaml and MLflow store, like dvc.yaml's report stage."""
    work = tmp_path_factory.mktemp("report-browser")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"]["idle_seconds"] = 1.0  # a short quiet window: the figures are not judged
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage_metrics = write_metrics(work / "metrics")
    reports = work / "reports"
    cmd = [sys.executable, str(ROOT / "pipelines" / "report.py")]
    cmd += [a for m in stage_metrics for a in ("--stage-metrics", m)]
    cmd += ["--model-metrics", str(work / "metrics" / "models"), "--md", "reports/report.md"]
    cmd += ["--html", "reports/report.html", "--png", "reports/accuracy_energy.png"]
    cmd += ["--stages-png", "reports/energy_stages.png", "--headline", "reports/headline.json"]
    cmd += ["--models-csv", "reports/models.csv", "--metrics", "metrics/report.json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GREENPIPE_"))}
    env |= {
        "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return reports / "report.html"


def _open(browser, page: Path):
    browser.get(page.as_uri())
    browser.execute_script("return document.fonts ? document.fonts.ready : null")
    return browser


def test_the_report_fits_1280_px_without_sideways_scroll(browser, report_html):
    page = _open(browser, report_html)
    inner, scroll = page.execute_script(
        "return [window.innerWidth, document.documentElement.scrollWidth]"
    )
    assert inner == WIDTH
    assert scroll <= inner, f"the page scrolls sideways: {scroll} px wide in a {inner} px window"
    too_wide = page.execute_script(
        "return [...document.querySelectorAll('table, img, pre')]"
        ".filter(e => e.getBoundingClientRect().right > window.innerWidth)"
        ".map(e => (e.closest('section')?.querySelector('h2')?.textContent) || e.tagName)"
    )
    assert too_wide == [], f"wider than the window: {too_wide}"


def test_every_picture_loads(browser, report_html):
    page = _open(browser, report_html)
    images = page.execute_script(
        "return [...document.images].map(i => [i.alt, i.complete && i.naturalWidth > 0])"
    )
    assert len(images) >= 2, images  # accuracy against energy, energy per stage
    assert all(ok for _, ok in images), f"not loaded: {[a for a, ok in images if not ok]}"


def test_the_findings_come_first(browser, report_html):
    page = _open(browser, report_html)
    items = page.execute_script(
        "const f = document.querySelector('#findings');"
        "return f ? [...f.querySelectorAll('li')].map(li => li.textContent) : null"
    )
    assert items is not None, "no #findings section"
    assert len(items) >= 1
    assert any(
        t.startswith("Knowledge distillation (student_kd vs student_scratch)") for t in items
    )
    first = page.execute_script("return document.querySelector('h2').closest('#findings') !== null")
    assert first, "the first section is not the findings"
    text = page.find_element("tag name", "body").text
    assert not re.search(r"\d\.\d+e[-+]\d", text), "a figure in 4.433e-08 notation"
