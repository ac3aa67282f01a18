"""Users' own models: `function` in a Python file of the repo (a model section's `file`).

The function is called as ``function(input_shape, n_classes, framework=name, **settings)``
with `input_shape` (H, W, C), and returns a torch `nn.Module` (called on (N, C, H, W)
batches) or a `keras.Model` (called on (N, H, W, C) batches) that outputs logits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greenpipe.errors import ConfigError


def builder(file: str, function: str) -> Callable[..., Any]:
    """The user's build function, imported from `file` (relative to the repo root, the
    stage's working directory)."""
    path = Path(file)
    if not path.is_file():
        raise ConfigError(
            f"model file '{file}' not found; create it (see custom/models.py) or fix model.file"
        )
    name = "greenpipe_user_model_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(
                f"model file '{file}' failed to import ({exc.__class__.__name__}: {exc}); fix it"
            ) from None
        sys.modules[name] = module
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ConfigError(
            f"model file '{file}' has no function '{function}'; "
            "define it or set model.custom.function"
        )
    return fn


def build(spec: dict[str, Any], input_shape: tuple[int, ...], n_classes: int, framework: str):
    """The user's model for `spec` ({"file", "function", "settings"}, as stored in `.meta`)."""
    fn = builder(spec["file"], spec["function"])
    try:
        return fn(tuple(input_shape), int(n_classes), framework=framework, **spec["settings"])
    except Exception as exc:
        raise ConfigError(
            f"{spec['file']}:{spec['function']} raised {exc.__class__.__name__}: {exc}; fix it "
            "or its settings under model.custom"
        ) from None


def spec_of(model_spec) -> dict[str, Any]:
    """The JSON-ready description of a custom `config.ModelSpec` kept in model files."""
    c = model_spec.custom
    return {"file": model_spec.file, "function": c.function, "settings": c.settings}
