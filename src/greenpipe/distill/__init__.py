"""Distillation losses, registered by name and built from config (`key` + kwargs).

Each backend implements the same losses in its framework (`kd_torch`, `kd_tensorflow`); the
equations and the papers are in the docstrings there.
"""

LOSSES = ("hinton",)
