"""Checks on a teacher-student pair before distillation spends any energy on it."""

from __future__ import annotations

from greenpipe.errors import GreenpipeError


def check_param_ratio(t_params: int, s_params: int, min_ratio: float) -> None:
    """The teacher must have at least `min_ratio` times the student's parameters
    (distill.min_param_ratio); a one-line error naming both counts and the fix otherwise."""
    if t_params / s_params < min_ratio:
        raise GreenpipeError(
            f"student has {s_params} params, teacher {t_params}: ratio "
            f"{t_params / s_params:.1f} < distill.min_param_ratio {min_ratio}; "
            "shrink distill.model or grow train.model"
        )
