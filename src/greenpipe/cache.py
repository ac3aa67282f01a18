"""greenpipe's per-user cache folder (standard library only: the stage servers import it)."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GREENPIPE_CACHE_DIR"


def cache_dir() -> Path:
    """$GREENPIPE_CACHE_DIR, else $XDG_CACHE_HOME/greenpipe, else ~/.cache/greenpipe."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "greenpipe"
