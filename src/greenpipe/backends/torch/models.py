"""The CNN used for teacher and student (same family, different width)."""

from __future__ import annotations

import torch
from torch import nn
from torch.ao.quantization import DeQuantStub, QuantStub

from greenpipe.config import ModelArch


class SmallCNN(nn.Module):
    """conv3x3-ReLU-maxpool blocks, then dropout, one hidden dense layer and the logits.

    Quant/DeQuant stubs are identities in float mode and mark where int8 begins and ends
    after static quantization.
    """

    def __init__(self, arch: ModelArch, input_shape: tuple[int, int, int], n_classes: int):
        super().__init__()
        h, w, c = input_shape
        layers: list[nn.Module] = []
        for out_c in arch.channels:
            layers += [nn.Conv2d(c, out_c, 3, padding=1), nn.ReLU()]
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            else:
                layers.append(nn.Identity())
            c = out_c
        self.quant, self.dequant = QuantStub(), DeQuantStub()
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(arch.dropout),
            nn.Linear(c * h * w, arch.hidden),
            nn.ReLU(),
            nn.Linear(arch.hidden, n_classes),
        )

    def fusion_groups(self) -> list[list[str]]:
        """Conv+ReLU and Linear+ReLU pairs that static quantization fuses."""
        convs = [[f"features.{i}", f"features.{i + 1}"] for i in range(0, len(self.features), 3)]
        return [*convs, ["classifier.2", "classifier.3"]]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dequant(self.classifier(self.features(self.quant(x))))
