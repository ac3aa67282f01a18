"""greenpipe.tracking.provenance and dvc_hashes: flattening, what dvc.yaml lists for a stage
(as DVC resolves it), and DVC's hashes of what a stage read and wrote."""

from __future__ import annotations

import hashlib
import textwrap

import numpy as np
import pytest
import yaml

from greenpipe.tracking.dvc_hashes import dir_md5, file_md5, stage_hashes
from greenpipe.tracking.provenance import (
    flatten,
    git_commit,
    library_versions,
    resolved_stages,
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
  fan:
    foreach: ${fan}
    do:
      cmd: python fan.py --out out/${item}.csv
      deps:
        - ${model.file}
      params:
        - seed
      outs:
        - out/${item}.csv
"""
PARAMS_YAML = "seed: 1\nfan: [a, b]\nmodel: {file: prep.py}\n"


@pytest.fixture
def repo(tmp_path):
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text(PARAMS_YAML)
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


def test_stages_are_resolved_by_dvc_foreach_and_interpolation_included(repo):
    stages = resolved_stages(repo)
    assert list(stages) == ["prep", "bare", "fan@a", "fan@b"]
    assert stages["fan@b"]["cmd"] == "python fan.py --out out/b.csv"
    assert stages["fan@a"]["deps"] == ["prep.py"] and stages["fan@a"]["outs"] == ["out/a.csv"]
    assert list(
        resolved_stages(repo, params={"seed": 1, "fan": ["c"], "model": {"file": "x"}})
    ) == [
        "prep",
        "bare",
        "fan@c",
    ]
    assert stage_param_keys(repo, "fan@a") == ["seed"]


def test_stage_hashes_cover_existing_files_only(repo):
    assert stage_hashes(repo, "prep", "deps") == {
        "deps/prep.py": _md5(repo / "prep.py"),
        "deps/data/raw.csv": _md5(repo / "data" / "raw.csv"),
        "deps/src": dir_md5(repo, "src"),
    }
    assert stage_hashes(repo, "prep", "outs") == {
        "outs/out/prepared.npz": _md5(repo / "out" / "prepared.npz"),
        "outs/out/report.md": _md5(repo / "out" / "report.md"),
    }
    assert stage_hashes(repo, "bare", "deps") == stage_hashes(repo, "nope", "outs") == {}


def test_a_dep_another_stage_made_is_read_from_dvc_lock_not_hashed(repo):
    """DVC wrote the producing stage's entry before this stage started: its hash is taken as
    is (here a made-up one, which no hashing of the file could give)."""
    made = {"path": "data/raw.csv", "hash": "md5", "md5": "0" * 32, "size": 8}
    own = {"path": "prep.py", "hash": "md5", "md5": "1" * 32, "size": 1}  # a previous run's
    stages = {"get": {"cmd": "x", "outs": [made]}, "prep": {"cmd": "y", "deps": [own]}}
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))
    deps = stage_hashes(repo, "prep", "deps")
    assert deps["deps/data/raw.csv"] == "0" * 32
    assert deps["deps/prep.py"] == _md5(repo / "prep.py")  # not the stale entry of its own


def test_stage_hashes_change_with_the_file(repo):
    before = stage_hashes(repo, "prep", "deps")
    (repo / "data" / "raw.csv").write_text("a,b\n1,3\n")
    (repo / "src" / "lib.py").write_text("x = 2\n")
    after = stage_hashes(repo, "prep", "deps")
    assert after["deps/data/raw.csv"] != before["deps/data/raw.csv"]
    assert after["deps/src"] != before["deps/src"]


def test_folder_hash_is_dvcs_own(tmp_path):
    """The `.dir` md5 DVC itself records for a folder (`dvc add`), .dvcignore applied."""
    from dvc.repo import Repo

    (tmp_path / ".dvcignore").write_text("__pycache__\n*.pyc\nbuild/\n!keep.pyc\n")
    top = tmp_path / "pkg"
    for rel, text in {
        "a.py": "a = 1\n",
        "sub/b.py": "b = 2\n",
        "sub/keep.pyc": "kept\n",
        "sub/drop.pyc": "dropped\n",
        "__pycache__/a.cpython.pyc": "cache\n",
        "build/out.txt": "built\n",
        "notes/build": "a file named build stays\n",
    }.items():
        (top / rel).parent.mkdir(parents=True, exist_ok=True)
        (top / rel).write_text(text)
    with Repo.init(str(tmp_path), no_scm=True) as repo:
        repo.add(str(top))
    recorded = yaml.safe_load((tmp_path / "pkg.dvc").read_text())["outs"][0]["md5"]
    assert dir_md5(tmp_path, "pkg") == recorded
    (top / "sub" / "b.py").write_text("b = 3\n")
    assert dir_md5(tmp_path, "pkg") != recorded


@pytest.mark.parametrize("content", [None, "stages: [unclosed\n", ""])
def test_missing_or_broken_dvc_yaml_gives_nothing(tmp_path, content):
    if content is not None:
        (tmp_path / "dvc.yaml").write_text(content)
    assert stage_param_keys(tmp_path, "prep") == []
    assert resolved_stages(tmp_path) == {}
    assert stage_hashes(tmp_path, "prep", "deps") == {}


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
