"""greenpipe.report.seeds: runs that differ only by seed, grouped, with mean and spread."""

from __future__ import annotations

import pytest
from parent_runs import sample_points, two_more_seeds

from greenpipe.report.seeds import accuracy_by_seed, describe, kd_against_scratch, seed_groups


@pytest.fixture
def points() -> list[dict]:
    return sample_points()


def test_seeds_take_the_latest_run_per_seed_of_the_largest_config(points):
    (config, seeds), *_ = seed_groups(points)
    assert seeds == {1: "a", 2: "b", 3: "c"}
    rows = {r["model"]: r for r in accuracy_by_seed(points, seeds)}
    kd = rows["student_kd"]
    assert (kd["seed_1"], kd["seed_2"], kd["seed_3"], kd["n"]) == (0.97, 0.98, 0.96, 3)
    assert kd["mean"] == pytest.approx(0.97) and kd["std"] == pytest.approx(0.01)
    (cmp,) = kd_against_scratch(list(rows.values()), seeds)
    assert cmp["difference"] == pytest.approx(0.97 - 0.97)
    assert cmp["kd_at_least_scratch"] == "2 of 3 seeds" and cmp["verdict"] == "KD >= scratch"


def test_no_config_with_two_seeds(points):
    assert seed_groups([p for p in points if p["run_id"] == "other"]) == []


def test_every_config_with_two_seeds_is_a_group_named_by_what_differs(points):
    pts = points + two_more_seeds()
    groups = seed_groups(pts)
    # three seeds each: the more recent configuration comes first
    assert [sorted(seeds) for _, seeds in groups] == [[7, 8, 9], [1, 2, 3]]
    assert describe(groups[0][0], pts, [groups[1][0]]) == "distill.alpha=0.1"
    assert describe(groups[0][0], pts, []) == ""
