"""Distillation losses, registered by name and built from config (`key` + kwargs).

Each backend implements the same losses in its framework (`kd_torch`, `kd_tensorflow`, each
with a `LOSSES` registry and `build_loss(name, **kwargs)`); the equations and the papers are
in the docstrings there. params.yaml chooses one with `distill.loss`:

- ``hinton``: Hinton, Vinyals and Dean (2015), soft targets at temperature T;
- ``logit_std``: Sun et al. (CVPR 2024), the same on per-sample z-scored logits.
"""

LOSSES = ("hinton", "logit_std")
