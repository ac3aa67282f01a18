"""DVC's hashes of what a stage run read and wrote, as DVC records them in dvc.lock: a file's
md5, a folder's `.dir` md5 (see stage_hashes for when each is known)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

from greenpipe.tracking.provenance import _read_yaml, paths_of, stage_spec

DVC_DEFAULT_IGNORES = (".hg/", ".git/", ".git", ".dvc/")  # what DVC never hashes


def file_md5(path: Path) -> str:
    """DVC 3's hash of a file (`hash: md5` in dvc.lock): the MD5 of its bytes."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _ignore_rules(root: Path) -> list[tuple[Any, bool, bool]]:
    """(regex, ignore, dir only) of DVC's default patterns and root/.dvcignore, compiled by
    the pattern class DVC uses (pathspec's gitignore patterns)."""
    try:
        from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern as Pattern
    except ImportError:  # pathspec < 1
        from pathspec.patterns import GitWildMatchPattern as Pattern

    try:
        lines = (root / ".dvcignore").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    rules = []
    for line in [*DVC_DEFAULT_IGNORES, *map(str.strip, lines)]:
        if not line or line.startswith("#"):
            continue
        regex, include = Pattern.pattern_to_regex(line)
        if regex is not None and include is not None:
            rules.append((re.compile(regex), include, line.endswith("/")))
    return rules


def _ignored(rules, rel: str, is_dir: bool) -> bool:
    """Whether DVC ignores root-relative `rel`: the last pattern matching it decides."""
    candidates = [rel, f"{rel}/"] if is_dir else [rel]
    for regex, ignore, dir_only in reversed(rules):
        if dir_only and not is_dir:
            continue
        if any(regex.match(c) for c in candidates):
            return ignore
    return False


def dir_md5(root: Path, rel: str) -> str | None:
    """DVC's hash of the folder root/rel (a `.dir` md5 in dvc.lock): the MD5 of its tree, the
    sorted JSON list of {"md5", "relpath"} of every file DVC sees there (.dvcignore applied),
    plus ".dir". None where a .dvcignore below the repo root applies (DVC merges those in ways
    this does not follow), and for nothing to hash."""
    rules, top = _ignore_rules(root), root / rel
    parts = Path(rel).parts
    if any((root.joinpath(*parts[:i]) / ".dvcignore").is_file() for i in range(1, len(parts))):
        return None
    entries = []
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath).relative_to(root).as_posix()
        if (Path(dirpath) / ".dvcignore").is_file():
            return None
        dirnames[:] = sorted(d for d in dirnames if not _ignored(rules, f"{here}/{d}", True))
        for name in filenames:
            if not _ignored(rules, f"{here}/{name}", False):
                path = Path(dirpath) / name
                entries.append({"md5": file_md5(path), "relpath": path.relative_to(top).as_posix()})
    if not entries:
        return None
    entries.sort(key=lambda e: e["relpath"])
    tree = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(tree).hexdigest() + ".dir"


def dvc_hash(root: Path, rel: str) -> str | None:
    """DVC's hash of root/rel as DVC computes it (a file's md5, a folder's `.dir` md5), or
    None if it does not exist."""
    path = root / rel
    if path.is_file():
        return file_md5(path)
    if path.is_dir():
        return dir_md5(root, rel)
    return None


def _lock_outs(root: Path, but: str) -> dict[str, str]:
    """{path: md5} of every output dvc.lock records, except the stage `but`'s own."""
    stages = _read_yaml(root / "dvc.lock").get("stages") or {}
    return {
        o["path"]: o["md5"]
        for name, entry in stages.items()
        if name != but and isinstance(entry, dict)
        for o in entry.get("outs") or []
        if isinstance(o, dict) and o.get("path") and o.get("md5")
    }


def stage_hashes(root: Path, stage: str, kind: str) -> dict[str, str]:
    """DVC's hashes of what a run of the stage read (kind "deps") or wrote ("outs"):
    {"<kind>/<path>": md5} for the paths that exist, a folder with its `.dir` md5. Each value
    is the one DVC writes to dvc.lock for this run; {} outside a DVC project.

    When each is known. DVC writes a stage's entry to dvc.lock after the stage's command has
    exited: while the stage runs, its own entry is its previous run's, whose hash of a dep
    that has changed since (the reason DVC runs it again) is stale, and whose outs are the
    ones this run replaces. So:

    - deps, taken as the stage starts: a dep that another stage outputs is read from that
      stage's entry in dvc.lock (DVC wrote it when that stage finished, before this one
      started: the hash of the bytes this stage reads), never hashed here; a dep no stage
      outputs (code, src/ folders, inputs/) is hashed here, as DVC hashes it;
    - outs (outs, metrics and plots of dvc.yaml), taken once the stage has written them: hashed
      here, as DVC hashes them right after.

    So a file is hashed at most once per stage run, and a data set another stage made never.
    """
    root = Path(root).resolve()
    spec = stage_spec(root, stage)
    sections = ("deps",) if kind == "deps" else ("outs", "metrics", "plots")
    paths = [p for s in sections for p in paths_of(spec.get(s))]
    recorded = _lock_outs(root, stage) if kind == "deps" else {}
    out = {}
    for rel in paths:
        value = recorded.get(rel) if (root / rel).exists() else None
        if value := value or dvc_hash(root, rel):
            out[f"{kind}/{rel}"] = value
    return out


def tags(root: Path, stage: str, kind: str) -> dict[str, str]:
    """stage_hashes as the stage run's MLflow tags: `dvc.deps/<path>`, `dvc.outs/<path>`."""
    return {f"dvc.{k}": v for k, v in stage_hashes(root, stage, kind).items()}
