r"""Distillation losses, registered by name and built from config (`key` + kwargs).

Each backend implements the same losses in its framework (`kd_torch`, `kd_tensorflow`, each
with a `LOSSES` registry and `build_loss(name, **kwargs)`); their equations and papers are
stated here, once, for both. params.yaml chooses one with `distill.loss`, with the
temperature T and the weight alpha of the soft term. In every loss, :math:`z_s, z_t` are
the student's and the teacher's logits (N, classes), :math:`y` the labels, :math:`\sigma`
the softmax over the classes; KL is summed over the classes, and each term is a mean over
the batch.

``hinton``: soft targets at temperature T, mixed with the hard loss.

.. math::
    L = \alpha \, T^2 \, \mathrm{KL}\big(\sigma(z_t / T) \,\|\, \sigma(z_s / T)\big)
        + (1 - \alpha) \, \mathrm{CE}(z_s, y)

The :math:`T^2` factor keeps the soft-target gradients on the scale of the hard ones.
Hinton, Vinyals and Dean (2015), "Distilling the Knowledge in a Neural Network",
https://arxiv.org/abs/1503.02531

``logit_std``: the same on z-scored logits (logit standardisation).

.. math::
    \mathcal{Z}(z) = \frac{z - \bar{z}}{\operatorname{std}(z) + 10^{-7}}, \qquad
    L = \alpha \, T^2 \, \mathrm{KL}\big(\sigma(\mathcal{Z}(z_t) / T) \,\|\,
        \sigma(\mathcal{Z}(z_s) / T)\big) + (1 - \alpha) \, \mathrm{CE}(z_s, y)

Standardising each sample's logits (mean and unbiased standard deviation over the classes)
before the temperature softmax frees the student from matching the teacher's logit range
and variance; only their relations are transferred. T acts as a base temperature, and the
hard term uses the raw student logits.
Sun, Ren, Li, Wang and Cao (2024), "Logit Standardization in Knowledge Distillation",
CVPR 2024, https://arxiv.org/abs/2403.01427
"""

LOSSES = ("hinton", "logit_std")
