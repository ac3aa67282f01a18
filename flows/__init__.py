"""Prefect flows that drive the DVC pipeline (experiment, and later sweeps and serving)."""
