"""Training backends behind one small interface, chosen by name through a registry.

A framework is imported only when its backend is selected: `get_backend("torch")` imports
PyTorch, `get_backend("tensorflow")` imports TensorFlow, and importing greenpipe imports neither.
"""

from greenpipe.backends.base import Backend, History
from greenpipe.backends.registry import available_backends, get_backend

__all__ = ["Backend", "History", "available_backends", "get_backend"]
