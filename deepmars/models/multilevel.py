"""A classifier that sees mid-level features beside the final ones (``model.feature_blocks``).

ImageNet's final features encode ImageNet's objects; Mars images differ most in texture and
layout, which the middle blocks of a network describe more generally. Concatenating the
globally averaged outputs of chosen blocks with the final pooled features gives the new head
both. Measured with frozen EfficientNet-Lite0 features on the MSL sol split, where test lies in
the rover's future (docs/ablation.md): test 73.6% from the final features, 78.9% with blocks 3-5.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepmars.errors import ConfigError


class MultiLevelClassifier(nn.Module):
    """A timm EfficientNet-family backbone; ``classifier`` sees [final pooled, pooled block i, ...]."""

    def __init__(self, backbone: nn.Module, blocks: Sequence[int], num_classes: int):
        super().__init__()
        for name in ("conv_stem", "bn1", "blocks", "conv_head", "bn2", "forward_head"):
            if not hasattr(backbone, name):
                raise ConfigError("model.feature_blocks: needs a timm EfficientNet-family backbone "
                                  f"(conv_stem, blocks, conv_head), {type(backbone).__name__} has no {name}")
        bad = [b for b in blocks if not 0 <= int(b) < len(backbone.blocks)]
        if bad:
            raise ConfigError(f"model.feature_blocks: {bad} out of range: this backbone has blocks "
                              f"0..{len(backbone.blocks) - 1}")
        self.backbone = backbone
        self.taps = tuple(sorted({int(b) for b in blocks}))
        backbone.reset_classifier(0)
        was_training = backbone.training
        backbone.eval()  # a probe input must not touch BatchNorm's running statistics
        with torch.no_grad():
            dim = self._features(torch.zeros(1, 3, 64, 64)).shape[1]
        backbone.train(was_training)
        self.classifier = nn.Linear(dim, num_classes)

    def get_classifier(self) -> nn.Module:
        return self.classifier

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        m = self.backbone
        x = m.bn1(m.conv_stem(x))
        pooled = []
        for i, block in enumerate(m.blocks):
            x = block(x)
            if i in self.taps:
                pooled.append(x.float().mean((2, 3)))
        final = m.forward_head(m.bn2(m.conv_head(x)), pre_logits=True)
        return torch.cat([final.float(), *pooled], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self._features(x))
