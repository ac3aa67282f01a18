"""A sweep's variant that lost one of DVC's races with another variant starts again; any
other failure is the variant's own and is reported, not retried."""

from __future__ import annotations

import pytest

from greenpipe.flows.sweep import dvc_race

RUN_CACHE = (
    "ERROR: failed to reproduce 'compress': [Errno 2] No such file or directory: "
    "'/tmp/w/repo/.dvc/cache/runs/18/1841df86bb/.Aj2YmUtLPC2Dyf3ASw94iw.tmp'"
)
LOCK = "ERROR: Unable to acquire lock. Most likely another DVC process is running"


@pytest.mark.parametrize(
    "output, race",
    [
        (RUN_CACHE, "another variant saved the same stage run to DVC's run-cache"),
        (LOCK, "the repo's DVC lock is busy"),
        ("greenpipe error: stage 'train' failed (exit 1): data.path 'x' is empty", None),
        ("ERROR: [Errno 2] No such file or directory: '/tmp/w/repo/data/x.npz'", None),
    ],
)
def test_only_dvc_races_between_variants_are_retried(output, race):
    assert dvc_race(output) == race
