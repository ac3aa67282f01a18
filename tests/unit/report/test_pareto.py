"""greenpipe.report.pareto: the front of accuracy (max) against energy (min)."""

from __future__ import annotations

import itertools
import random

import pytest

from greenpipe.report.pareto import dominates, pareto_front


def test_hand_made_front():
    points = [
        (0.90, 1.0),  # cheapest: on the front
        (0.95, 2.0),  # more accurate for more energy: on the front
        (0.93, 3.0),  # dominated by (0.95, 2.0)
        (0.99, 5.0),  # most accurate: on the front
        (0.80, 4.0),  # dominated by everything cheaper and better
    ]
    assert pareto_front(points) == [True, True, False, True, False]


def test_single_point_and_empty():
    assert pareto_front([(0.5, 10.0)]) == [True]
    assert pareto_front([]) == []


def test_duplicates_are_all_kept_on_the_front():
    assert pareto_front([(0.9, 1.0), (0.9, 1.0), (0.8, 2.0)]) == [True, True, False]
    assert pareto_front([(0.9, 1.0), (0.95, 0.5), (0.9, 1.0)]) == [False, True, False]


def test_ties_on_one_axis_are_broken_by_the_other():
    # same energy: the more accurate wins; same accuracy: the cheaper wins
    assert pareto_front([(0.8, 1.0), (0.9, 1.0)]) == [False, True]
    assert pareto_front([(0.9, 2.0), (0.9, 1.0)]) == [False, True]


def test_missing_or_non_finite_values_are_never_on_the_front_nor_dominate():
    points = [(None, 0.1), (0.99, None), (float("nan"), 1.0), (0.5, float("inf")), (0.2, 9.0)]
    assert pareto_front(points) == [False, False, False, False, True]


def test_dominates_is_strict():
    assert dominates((0.9, 1.0), (0.8, 1.0)) and dominates((0.9, 1.0), (0.9, 2.0))
    assert not dominates((0.9, 1.0), (0.9, 1.0))
    assert not dominates((0.9, 2.0), (0.8, 1.0))


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_the_definition_on_random_points(seed):
    rng = random.Random(seed)
    points = [(rng.randint(0, 5) / 5, float(rng.randint(0, 5))) for _ in range(12)]
    brute = [
        not any(dominates(q, p) for j, q in enumerate(points) if j != i)
        for i, p in enumerate(points)
    ]
    assert pareto_front(points) == brute


def test_front_does_not_depend_on_the_order_of_the_points():
    points = [(0.9, 1.0), (0.95, 2.0), (0.93, 3.0), (0.9, 1.0), (0.99, 5.0)]
    want = dict(zip(points, pareto_front(points), strict=True))
    for perm in itertools.islice(itertools.permutations(points), 50):
        assert dict(zip(perm, pareto_front(list(perm)), strict=True)) == want
