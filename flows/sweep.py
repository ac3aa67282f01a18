"""The sweep flow, for Prefect's file entry points (its code: greenpipe.flows.sweep)."""

from greenpipe.flows.sweep import run_variant, sweep

__all__ = ["run_variant", "sweep"]
