"""A user's own model (custom/models.py, the shipped example) as the student, through the
whole pipeline in both frameworks under `dvc repro`: it trains, distils and quantizes; the
report says per model why it was not pruned; and editing the file re-runs exactly the
stages that use the model."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("custom-model")]

STUDENT = {
    "arch": "custom",
    "file": "custom/models.py",
    "custom": {"function": "build", "width": 8},
}


@pytest.fixture(scope="module")
def repro(own_workspace):
    ws = own_workspace
    raw = ws.params()
    raw["distill"]["model"].update(STUDENT)
    raw["distill"].update(epochs=10, lr=0.01, patience=10)  # a depthwise net starts slowly
    ws.write_params(raw)
    ws.run("dvc", "repro", timeout=1500)
    return ws


def _record(ws, backend: str, stage: str) -> dict:
    return json.loads((ws.path / f"metrics/models/{backend}/{stage}.json").read_text())


def test_the_custom_student_is_distilled_quantized_and_not_pruned_with_a_reason(repro):
    ws = repro
    for backend in ws.params()["train"]["backends"]:
        models = _record(ws, backend, "evaluate")["models"]
        assert models["student_kd"]["arch"] == "custom"
        assert models["teacher"]["arch"] == "cnn"
        assert models["student_kd"]["accuracy"] > 0.5
        assert models["student_kd_int8"]["accuracy"] > 0.5  # ONNX Runtime (torch) / TFLite
        why = models["student_kd_pruned"]["skipped"]
        assert "known structure" in why and "custom/models.py:build" in why
        assert "no pruned model" in models["student_kd_pruned_int8"]["skipped"]
        opt = _record(ws, backend, "optimize")
        assert opt["student_kd_pruned"]["skipped"] == why
        assert opt["student_kd_int8"]["params_after"] == models["student_kd"]["params"]
    report = (ws.path / "reports/report.md").read_text()
    for backend in ws.params()["train"]["backends"]:
        assert f"student_kd_pruned [{backend}] was not made: structured pruning" in report
        assert f"| student_kd | {backend} | custom |" in report
        assert f"| teacher | {backend} | cnn |" in report


def test_editing_the_model_file_reruns_exactly_the_stages_that_use_it(repro):
    ws = repro
    path = ws.path / "custom/models.py"
    path.write_text(path.read_text() + "\n# an edit\n")
    proc = ws.run("dvc", "status", "--json")
    changed = set(json.loads(proc.stdout))
    backends = ws.params()["train"]["backends"]
    expected = {f"{s}@{b}" for s in ("distill", "optimize", "evaluate") for b in backends}
    assert changed == expected, proc.stdout
