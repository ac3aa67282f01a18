"""greenpipe.artifacts: atomic writes and the on-disk formats shared by the stages."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from greenpipe import artifacts
from greenpipe.artifacts import atomic_path, load_dataset, load_splits, save_splits, write_curves
from greenpipe.errors import DataError


def _splits(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        name: (rng.random((n, 3, 3, 1), dtype=np.float32), rng.integers(0, 4, n))
        for name, n in (("train", 6), ("val", 3), ("test", 2))
    }


# --- atomic_path ---------------------------------------------------------------------------


def test_atomic_path_writes_on_success_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "sub" / "out.json"
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and tmp != dest
        assert not dest.exists()
        tmp.write_text("done")
    assert dest.read_text() == "done"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.json"]


def test_atomic_path_replaces_an_existing_file(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with atomic_path(dest) as tmp:
        tmp.write_text("new")
    assert dest.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_path_leaves_nothing_when_the_block_raises(tmp_path):
    dest = tmp_path / "out.npz"
    with pytest.raises(RuntimeError, match="killed"), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_keeps_the_old_file_when_the_block_raises(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("finished earlier")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert dest.read_text() == "finished earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


WRITER = """\
import os, signal, sys
from greenpipe.artifacts import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("from " + str(os.getpid()))
    print(tmp, flush=True)
    if sys.stdin.readline().strip() == "die":
        os.kill(os.getpid(), signal.SIGKILL)
"""


def _writer(dest):
    """Another process inside atomic_path(dest), its temporary file written; waits on stdin
    ("die": SIGKILL itself, else finish and rename)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(dest)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    return proc, Path(proc.stdout.readline().strip())


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    dest = tmp_path / "out.json"
    proc, theirs = _writer(dest)
    try:
        assert theirs.is_file() and theirs.parent == tmp_path
        with atomic_path(dest) as tmp:
            tmp.write_text("mine")
        assert theirs.is_file()  # still there while its writer lives
        assert dest.read_text() == "mine"
    finally:
        proc.communicate("finish\n", timeout=60)
    assert proc.returncode == 0  # its rename found its file
    assert dest.read_text() == f"from {proc.pid}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    dest = tmp_path / "out.json"
    proc, theirs = _writer(dest)
    proc.communicate("die\n", timeout=60)
    assert proc.returncode == -signal.SIGKILL and theirs.is_file()
    # temporary files whose writer cannot be told are kept: another machine or container
    # (another machine hash), a name not made by atomic_path, another file's
    foreign = tmp_path / f".out.00000000-{proc.pid}-1.abc.tmp.json"
    unattributed = tmp_path / ".out.k3j2h1.tmp.json"
    other_file = tmp_path / f".out.x.{theirs.name.split('.')[2]}.abc.tmp.json"
    for p in (foreign, unattributed, other_file):
        p.write_text("?")
    with atomic_path(dest) as tmp:
        tmp.write_text("new")
    assert not theirs.exists() and dest.read_text() == "new"
    assert foreign.exists() and unattributed.exists() and other_file.exists()


def test_write_json_round_trips_numpy_scalars(tmp_path):
    dest = tmp_path / "m.json"
    artifacts.write_json(dest, {"b": np.float32(1.5), "a": 2})
    assert artifacts.read_json(dest) == {"a": 2, "b": 1.5}
    assert dest.read_text().index('"a"') < dest.read_text().index('"b"')


# --- splits --------------------------------------------------------------------------------


def test_save_and_load_splits_round_trip(tmp_path):
    splits = _splits(np.random.default_rng(0))
    path = tmp_path / "d.npz"
    save_splits(path, splits)
    back = load_splits(path)
    assert list(back) == ["train", "val", "test"]
    for name, (x, y) in splits.items():
        bx, by = back[name]
        assert bx.dtype == x.dtype and by.dtype == y.dtype
        np.testing.assert_array_equal(bx, x)
        np.testing.assert_array_equal(by, y)


def test_load_splits_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_splits(tmp_path / "absent.npz")


def test_load_splits_names_missing_arrays(tmp_path):
    splits = _splits(np.random.default_rng(0))
    del splits["test"]
    path = tmp_path / "d.npz"
    save_splits(path, splits)
    with pytest.raises(DataError) as ei:
        load_splits(path)
    assert "x_test" in str(ei.value) and "y_test" in str(ei.value)
    assert "x_train" not in str(ei.value)


def test_load_splits_unreadable_file_is_a_data_error(tmp_path):
    path = tmp_path / "d.npz"
    path.write_text("not an npz\n")
    with pytest.raises(DataError):
        load_splits(path)


def test_load_dataset_decodes_uint8_to_float32_unit_range(tmp_path):
    x = np.array([0, 51, 255, 128], dtype=np.uint8).reshape(4, 1, 1, 1)
    y = np.array([0, 1, 1, 0], dtype=np.int32)
    path = tmp_path / "d.npz"
    save_splits(path, {s: (x, y) for s in ("train", "val", "test")})
    data = load_dataset(path)
    xt, yt = data["train"]
    assert xt.dtype == np.float32 and yt.dtype == np.int64
    np.testing.assert_allclose(xt.ravel(), [0.0, 0.2, 1.0, 128 / 255], rtol=1e-6)
    assert xt.min() >= 0.0 and xt.max() <= 1.0


# --- curves --------------------------------------------------------------------------------


def test_write_curves_one_row_per_epoch(tmp_path):
    path = tmp_path / "c.csv"
    rows = [
        {"epoch": 1, "train_loss": 0.5, "val_loss": 0.25},
        {"epoch": 2, "train_loss": 0.125, "val_loss": 1 / 3},
    ]
    write_curves(path, rows)
    assert path.read_text() == "epoch,train_loss,val_loss\n1,0.5,0.25\n2,0.125,0.333333\n"


def test_write_curves_without_rows_writes_a_header(tmp_path):
    path = tmp_path / "c.csv"
    write_curves(path, [])
    assert path.read_text() == "epoch\n"


def test_confined_outputs_refuse_paths_outside_the_root(tmp_path):
    from greenpipe.artifacts import outputs_inside, write_text
    from greenpipe.errors import UsageError

    (tmp_path / "repo").mkdir()
    with outputs_inside(tmp_path / "repo") as root:
        assert root == (tmp_path / "repo").resolve()
        write_text(tmp_path / "repo" / "metrics" / "ok.json", "{}")
        with pytest.raises(UsageError, match="outside the repo"):
            write_text(tmp_path / "elsewhere.json", "{}")
        with pytest.raises(UsageError):
            write_text(tmp_path / "repo" / ".." / "sneaky.json", "{}")
    assert (tmp_path / "repo" / "metrics" / "ok.json").is_file()
    assert not (tmp_path / "elsewhere.json").exists() and not (tmp_path / "sneaky.json").exists()
    write_text(tmp_path / "after.json", "{}")  # the block is over: no confinement left behind
    assert (tmp_path / "after.json").is_file()
