"""A trained model with everything needed to use it: classes, preprocessing, calibration.

Prediction and evaluation never re-specify any of these; they come with the model. The file is
a plain ``torch.save`` dict of tensors, strings and numbers, so it loads with
``torch.load(..., weights_only=True)`` (no pickled code runs on load).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepmars.data.transforms import Preprocess
from deepmars.errors import WeightsError
from deepmars.models.source_prior import adapted_logits
from deepmars.models.tta import combine_views, expand_views, views_for

BUNDLE_FORMAT = "deepmars-model/1"


@dataclass
class ModelBundle:
    model: nn.Module
    model_cfg: dict
    class_names: list[str]
    preprocess: Preprocess
    temperature: float = 1.0
    dataset: dict = field(default_factory=dict)
    model_id: str = ""
    # Test-time augmentation views (deepmars.models.tta), applied by every runtime around the network.
    tta: tuple[str, ...] = ("identity",)
    sha256: str = ""  # of the bundle file it was loaded from; exports record it to prove their origin
    # Landmarks of one source image re-estimate its class prior (deepmars.models.source_prior):
    # the training class mix and the Dirichlet strength; None: every image alone.
    class_prior: tuple[float, ...] | None = None
    source_prior_strength: float | None = None

    def to_state(self) -> dict:
        return {
            "format": BUNDLE_FORMAT,
            "model_cfg": dict(self.model_cfg),
            "class_names": list(self.class_names),
            "preprocess": self.preprocess.to_dict(),
            "temperature": float(self.temperature),
            "dataset": dict(self.dataset),
            "tta": list(self.tta),
            "class_prior": None if self.class_prior is None else [float(p) for p in self.class_prior],
            "source_prior_strength": self.source_prior_strength,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically: a crash mid-write never leaves a half file under ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.to_state(), tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path, model_id: str | None = None) -> ModelBundle:
        """Read a bundle file on any machine: tensors saved from a GPU come back on the CPU."""
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise WeightsError(f"{path}: not a readable deepmars model file ({exc})") from None
        if not isinstance(state, dict) or state.get("format") != BUNDLE_FORMAT:
            raise WeightsError(f"{path}: not a deepmars model file (expected format {BUNDLE_FORMAT!r})")
        digest = file_digest(path)
        return cls.from_state(state, model_id or f"file:{path.resolve()}#{digest[:12]}", sha256=digest)

    @classmethod
    def from_state(cls, state: dict, model_id: str, sha256: str = "") -> ModelBundle:
        """A bundle from ``to_state()``'s dict (how a bundle travels to worker processes); ``sha256``:
        of the file it was saved in, when known (an export proves its origin with it)."""
        from deepmars.config import ModelConfig
        from deepmars.models.factory import build_model
        from deepmars.schema import load

        spec = load(ModelConfig, state["model_cfg"], prefix="model")
        model, _ = build_model(spec, len(state["class_names"]), load_pretrained=False)
        model.load_state_dict(state["state_dict"])
        model.eval()
        return cls(model=model, model_cfg=state["model_cfg"], class_names=list(state["class_names"]),
                   preprocess=Preprocess.from_dict(state["preprocess"]),
                   temperature=float(state["temperature"]), dataset=dict(state.get("dataset", {})),
                   model_id=model_id, sha256=sha256, tta=views_for(state.get("tta") or None),
                   class_prior=tuple(state["class_prior"]) if state.get("class_prior") else None,
                   source_prior_strength=state.get("source_prior_strength"))

    @property
    def adapts_to_sources(self) -> bool:
        return self.source_prior_strength is not None and self.class_prior is not None

    def source_logits(self, logits: np.ndarray, sources: Sequence[str | None]) -> np.ndarray:
        """Logits (before the temperature) with each source image's class prior re-estimated from its
        rows; unchanged when this model classifies every image alone."""
        if not self.adapts_to_sources:
            return np.asarray(logits, dtype=np.float32)
        return adapted_logits(logits, sources, np.asarray(self.class_prior), float(self.source_prior_strength))

    @torch.inference_mode()
    def predict_proba(self, batch: torch.Tensor) -> np.ndarray:
        """Calibrated posteriors for a preprocessed batch: softmax(z / temperature), where z is the
        network's logits, or with test-time views the log of their mean softmax (deepmars.models.tta)."""
        z = combine_views(self.model(expand_views(batch, self.tta)), len(self.tta))
        return torch.softmax(z.float() / self.temperature, dim=1).cpu().numpy()


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
