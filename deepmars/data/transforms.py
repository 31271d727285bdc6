"""How an image becomes a network input, shared by training, evaluation and prediction.

Images are squashed to ``resize`` x ``resize`` (as Caffe's ImageNet recipe did: MSL browse images
are often 256x192, the aspect is not kept) and stored as uint8; the network sees an
``img_size`` crop of that, normalised with the backbone's own mean and std. The uint8 stage is
what the decoded-image cache holds, so decoding happens once per image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepmars.data.images import load_image
from deepmars.devices import to_device


@dataclass(frozen=True)
class Preprocess:
    """Everything needed to turn a file into a tensor; saved with every model."""

    img_size: int
    resize: int
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    channels: int = 3

    def __post_init__(self) -> None:
        if self.resize < self.img_size:
            raise ValueError(f"resize ({self.resize}) must be >= img_size ({self.img_size})")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")

    @property
    def mode(self) -> str:
        return "L" if self.channels == 1 else "RGB"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocess:
        return cls(img_size=int(d["img_size"]), resize=int(d["resize"]), mean=tuple(d["mean"]),
                   std=tuple(d["std"]), channels=int(d.get("channels", 3)))

    def decode(self, path: str | Path) -> np.ndarray:
        """File -> uint8 array (resize, resize, channels). Raises ImageError on a bad file."""
        return self.from_pil(load_image(path, self.mode))

    def from_pil(self, img: Image.Image) -> np.ndarray:
        if img.mode != self.mode:
            img = img.convert(self.mode)
        img = img.resize((self.resize, self.resize), Image.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        return arr[:, :, None] if arr.ndim == 2 else arr

    def center_crop(self, batch: torch.Tensor) -> torch.Tensor:
        """Crop the centre img_size square of uint8 NHWC images."""
        off = (self.resize - self.img_size) // 2
        return batch[:, off:off + self.img_size, off:off + self.img_size, :]

    def normalize(self, batch_u8_nhwc: torch.Tensor) -> torch.Tensor:
        """uint8 NHWC -> float NCHW in channels_last memory, normalised.

        Channels-last is what makes convolution fast on CPU (about 4x for EfficientNet here).
        """
        x = batch_u8_nhwc.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last)

    def eval_batch(self, arrays: list[np.ndarray] | np.ndarray, device: torch.device | None = None) -> torch.Tensor:
        """Decoded uint8 arrays -> network input for evaluation and prediction (centre crop).

        With a ``device``, the uint8 crop is what travels there (a quarter of the float bytes) and
        normalisation runs on it.
        """
        batch = torch.from_numpy(np.ascontiguousarray(np.stack(arrays) if isinstance(arrays, list) else arrays))
        batch = self.center_crop(batch)
        if device is not None and device.type != "cpu":
            batch = to_device(batch.contiguous(), device)
        return self.normalize(batch)
