"""Name -> backend, importing the framework only when the backend is asked for."""

from __future__ import annotations

import importlib

from greenpipe.backends.base import Backend
from greenpipe.errors import GreenpipeError

_BACKENDS = {
    "torch": "greenpipe.backends.torch:TorchBackend",
    "tensorflow": "greenpipe.backends.tensorflow:TensorFlowBackend",
}
_cache: dict[str, Backend] = {}


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def backend_module(name: str) -> str | None:
    """The module that implements backend `name` (it imports the framework), or None."""
    spec = _BACKENDS.get(name)
    return spec.split(":")[0] if spec else None


def get_backend(name: str) -> Backend:
    """The backend registered as `name` (imports its framework on first use)."""
    if name not in _BACKENDS:
        raise GreenpipeError(f"unknown backend '{name}'; choose one of {available_backends()}")
    if name not in _cache:
        module, cls = _BACKENDS[name].split(":")
        try:
            _cache[name] = getattr(importlib.import_module(module), cls)()
        except ImportError as exc:
            raise GreenpipeError(
                f"backend '{name}' needs a package that is not installed ({exc.name}); "
                "run `make install`"
            ) from None
    return _cache[name]
