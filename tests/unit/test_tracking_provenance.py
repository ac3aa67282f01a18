"""greenpipe.tracking.provenance: flattening, md5s and what dvc.yaml lists for a stage."""

from __future__ import annotations

import hashlib
import textwrap

import numpy as np
import pytest
import yaml

from greenpipe.tracking.provenance import (
    file_md5,
    flatten,
    git_commit,
    library_versions,
    stage_hashes,
    stage_param_keys,
)

DVC_YAML = """\
stages:
  prep:
    cmd: python prep.py
    deps:
      - prep.py
      - data/raw.csv
      - data/absent.csv
      - src
    params:
      - seed
      - data
      - params.yaml:
          - train.lr
          - train.model.hidden
    outs:
      - out/prepared.npz
      - out/report.md:
          cache: false
  bare:
    cmd: echo hi
"""


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "prep.py").write_text("print('prep')\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv").write_text("a,b\n1,2\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.py").write_text("x = 1\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "prepared.npz").write_bytes(b"\x00\x01npz")
    (tmp_path / "out" / "report.md").write_text("# report\n")
    return tmp_path


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_flatten_nested_dicts_and_keeps_lists():
    d = {"seed": 1, "train": {"lr": 0.1, "model": {"channels": [8, 16]}}}
    assert flatten(d) == {"seed": 1, "train.lr": 0.1, "train.model.channels": [8, 16]}
    assert flatten({"a": {"b": 2}}, prefix="p.") == {"p.a.b": 2}


def test_file_md5_equals_hashlib_across_chunks(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).bytes((1 << 20) * 2 + 123))
    assert file_md5(path) == _md5(path)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_md5(empty) == "d41d8cd98f00b204e9800998ecf8427e"


def test_stage_param_keys(repo):
    assert stage_param_keys(repo, "prep") == ["seed", "data", "train.lr", "train.model.hidden"]
    assert stage_param_keys(repo, "prep@variant") == stage_param_keys(repo, "prep")
    assert stage_param_keys(repo, "bare") == []
    assert stage_param_keys(repo, "nope") == []


def test_stage_hashes_cover_existing_files_only(repo):
    assert stage_hashes(repo, "prep") == {
        "deps/prep.py": _md5(repo / "prep.py"),
        "deps/data/raw.csv": _md5(repo / "data" / "raw.csv"),
        "outs/out/prepared.npz": _md5(repo / "out" / "prepared.npz"),
        "outs/out/report.md": _md5(repo / "out" / "report.md"),
    }
    assert stage_hashes(repo, "bare") == {}


def test_stage_hashes_change_with_the_file(repo):
    before = stage_hashes(repo, "prep")["deps/data/raw.csv"]
    (repo / "data" / "raw.csv").write_text("a,b\n1,3\n")
    assert stage_hashes(repo, "prep")["deps/data/raw.csv"] != before


@pytest.mark.parametrize("content", [None, "stages: [unclosed\n", ""])
def test_missing_or_broken_dvc_yaml_gives_nothing(tmp_path, content):
    if content is not None:
        (tmp_path / "dvc.yaml").write_text(content)
    assert stage_param_keys(tmp_path, "prep") == []
    assert stage_hashes(tmp_path, "prep") == {}


def test_stage_param_keys_whole_file_entry(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        textwrap.dedent(
            """\
            stages:
              s:
                cmd: echo
                params:
                  - seed
                  - other.json:
            """
        )
    )
    assert "seed" in stage_param_keys(tmp_path, "s")


def test_library_versions_include_numpy():
    versions = library_versions()
    assert versions["numpy"] == np.__version__
    assert all(isinstance(v, str) and v for v in versions.values())


def test_git_commit_outside_a_repo_is_none(tmp_path):
    assert git_commit(tmp_path) == "none"


def test_verify_separates_measurements_from_results():
    from greenpipe.verify import Verdict, compare_metrics, is_measurement

    for key in (
        "energy.energy_j",
        "models.teacher.latency_p50_ms",
        "resources.peak_rss_mb",
        "models.teacher.throughput_sps",
        "energy.duration_s",
    ):
        assert is_measurement(key), key
    for key in ("models.teacher.accuracy", "removed.train.duplicate", "size_bytes", "ratio"):
        assert not is_measurement(key), key
    v = Verdict()
    recorded = {"accuracy": 0.9, "energy": {"energy_j": 1e-6}}
    compare_metrics("m.json", recorded, [{"accuracy": 0.9, "energy": {"energy_j": 3e-6}}], v)
    assert v.ok and v.spread["m.json:energy.energy_j"] == [1e-6, 3e-6]
    compare_metrics("m.json", recorded, [{"accuracy": 0.8, "energy": {"energy_j": 1e-6}}], v)
    assert not v.ok and "accuracy" in v.mismatches[0]


def test_lock_stages_leave_out_a_framework_dropped_from_train_backends(tmp_path):
    from greenpipe.tracking.provenance import lock_stages

    stages = {s: {"cmd": "x"} for s in ("prepare", "train@torch", "train@tensorflow", "report")}
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump({"schema": "2.0", "stages": stages}, sort_keys=False)
    )
    assert lock_stages(tmp_path, ["torch"]) == ["prepare", "train@torch", "report"]
    assert lock_stages(tmp_path / "nowhere", ["torch"]) == []
