"""The stage graph, read from dvc.yaml through DVC itself (no second list of stages)."""

from __future__ import annotations

from pathlib import Path

from greenpipe.errors import UsageError


def open_repo(root: Path):
    """A dvc.repo.Repo for root, or a one-line error if DVC is not initialised there."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo(str(root))
    except NotDvcRepoError:
        raise UsageError(
            f"'{root}' is not a DVC repository; run `dvc init` there "
            "(or run greenpipe from the repo root)"
        ) from None


def stage_order(root: Path) -> list[str]:
    """Stage names (e.g. `train` or `train@torch`) in dependency order."""
    return list(stage_graph(root))


def _graph_of(repo) -> dict[str, list[str]]:
    import networkx as nx

    graph = repo.index.graph  # edge: stage -> a stage it depends on
    stages = [s for s in reversed(list(nx.topological_sort(graph))) if s.cmd]
    return {s.name: sorted(u.name for u in graph.successors(s) if u.cmd) for s in stages}


def stage_graph(root: Path) -> dict[str, list[str]]:
    """{stage: the stages it depends on directly}, in dependency order (DVC's stage names,
    e.g. `train@torch`, whatever the working directory), from DVC's own graph of dvc.yaml."""
    with open_repo(root) as repo:
        return _graph_of(repo)


def stage_plan(root: Path, force: bool) -> tuple[dict[str, list[str]], dict[str, tuple]]:
    """stage_graph, and {stage: (wdir, cmd)} of the stages this run may execute: every stage
    with `force`, else those DVC reports changed and the stages downstream of them."""
    with open_repo(root) as repo:
        graph = _graph_of(repo)
        # status keys are addressings ("dvc.yaml:train@torch" from another working directory)
        changed = set(graph) if force else {k.rpartition(":")[2] for k in repo.status()}
        for stage, upstream in graph.items():  # dependency order: upstream first
            if changed.intersection(upstream):
                changed.add(stage)
        stages = {s.name: s for s in repo.index.stages if s.cmd}
        return graph, {n: (stages[n].wdir, stages[n].cmd) for n in graph if n in changed}


def up_to_date(root: Path, stage: str | None = None) -> bool:
    """True if DVC would skip the stage (deps, params, cmd and outs match dvc.lock), or with
    no stage every stage of the pipeline (what `dvc status` reports)."""
    with open_repo(root) as repo:
        return not repo.status(targets=[stage] if stage else None)
