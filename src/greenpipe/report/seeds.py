"""Accuracy over seeds: runs that differ only by seed, side by side, with mean and spread."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any


def seed_groups(points: list[dict[str, Any]]) -> list[tuple[str, dict[int, str]]]:
    """[(configuration, {seed: run_id})] for every configuration run with two or more seeds,
    keeping each seed's latest run; most seeds first (ties: the most recent first)."""
    runs: dict[str, dict[int, tuple[int, str]]] = defaultdict(dict)
    for p in points:
        if p.get("seed") is None:
            continue
        known = runs[p["config"]].get(p["seed"])
        start = p.get("start_time") or 0
        if known is None or start > known[0]:
            runs[p["config"]][p["seed"]] = (start, p["run_id"])
    groups = sorted(
        (c for c in runs if len(runs[c]) >= 2),
        key=lambda c: (len(runs[c]), max(s for s, _ in runs[c].values())),
        reverse=True,
    )
    return [(c, {seed: rid for seed, (_, rid) in sorted(runs[c].items())}) for c in groups]


def describe(config: str, points: list[dict[str, Any]], others: list[str]) -> str:
    """What sets `config` apart from the `others`: the params whose values differ, as
    `key=value` (empty if there is no other configuration to compare with)."""
    params = {p["config"]: p.get("run_params") or {} for p in points}
    mine = params.get(config, {})
    keys = {
        k for c in others for k in {*mine, *params.get(c, {})} if mine.get(k) != params[c].get(k)
    }
    return ", ".join(f"{k}={mine.get(k)}" for k in sorted(keys))


def _stats(values: list[float]) -> dict[str, float | None]:
    return {
        "mean": statistics.fmean(values) if values else None,
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def accuracy_by_seed(points: list[dict[str, Any]], seeds: dict[int, str]) -> list[dict]:
    """One row per (model, backend): test accuracy at each seed (`seed_<s>`), mean, std, n."""
    chosen = set(seeds.values())
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for p in points:
        if p["run_id"] not in chosen or p.get("accuracy") is None:
            continue
        row = table.setdefault((p["model"], p["backend"]), {"model": p["model"]})
        row.update(backend=p["backend"], **{f"seed_{p['seed']}": p["accuracy"]})
    for row in table.values():
        row.update(_stats([row[f"seed_{s}"] for s in seeds if f"seed_{s}" in row]))
    return [table[k] for k in sorted(table)]


def kd_against_scratch(rows: list[dict], seeds: dict[int, str]) -> list[dict[str, Any]]:
    """Per backend: mean accuracy of the KD and the scratch student over the seeds, the
    difference, and at how many seeds KD was at least as accurate."""
    by = {(r["model"], r["backend"]): r for r in rows}
    out = []
    for backend in sorted({r["backend"] for r in rows}):
        kd, sc = by.get(("student_kd", backend)), by.get(("student_scratch", backend))
        if not kd or not sc or kd["mean"] is None or sc["mean"] is None:
            continue
        both = [s for s in seeds if f"seed_{s}" in kd and f"seed_{s}" in sc]
        wins = sum(kd[f"seed_{s}"] >= sc[f"seed_{s}"] for s in both)
        out.append(
            {
                "backend": backend,
                "kd_mean": kd["mean"],
                "scratch_mean": sc["mean"],
                "difference": kd["mean"] - sc["mean"],
                "kd_at_least_scratch": f"{wins} of {len(both)} seeds",
                "verdict": "KD >= scratch" if kd["mean"] >= sc["mean"] else "KD < scratch",
            }
        )
    return out
