"""predict.py with a source-prior model: the crops of one source image are classified together.

A model trained with ``model.source_prior_strength`` re-estimates each source image's class prior
from all its landmarks (``deepmars.models.source_prior``). predict.py streams files, so it holds
the decoded rows of each source image (file-name field ``source_image``) back until the listing
has passed that source, then adapts the group's posteriors together and writes its rows with the
batch that closed it, in that batch's one transaction.

Why this keeps a killed run exact: every closed group is written whole, an open one not at all, so
the next run finds all of an open group's files pending and classifies them together again. Files
are listed sorted by name within a folder, so a source's crops (``<source>-NNNN.jpg``) come one
after another. What forms a group is the files classified in one run: crops added to a source
later are adapted with each other, not with rows already in the catalog, and copies of known
content keep the row they copy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from deepmars.data.metadata import parse_metadata
from deepmars.inference.agreement import calibrated
from deepmars.models.bundle import ModelBundle
from deepmars.prediction.decode import Item

Held = tuple[Item, np.ndarray]  # an image and its calibrated posteriors


class SourceGroups:
    """Decoded rows held per source image until the listing is past it."""

    def __init__(self, bundle: ModelBundle, metadata_spec: Mapping | None):
        self.bundle = bundle
        self.spec = metadata_spec
        self.held: dict[str, list[Held]] = {}

    def source_of(self, path: str) -> str | None:
        """The source image a path's name gives (as the decode workers read it), None if none."""
        return parse_metadata(path, self.spec).get("source_image")

    def hold(self, item: Item, probs: np.ndarray) -> bool:
        """Keep a decoded image's posteriors for its source's group; False when it has no source
        (it is then classified alone)."""
        if not item.source_image:
            return False
        self.held.setdefault(item.source_image, []).append((item, probs))
        return True

    def release(self, keep: str | None = None) -> list[Held]:
        """Every held group except ``keep`` (the source the listing may still be in), adapted."""
        out: list[Held] = []
        for source in [s for s in self.held if s != keep]:
            items, probs = zip(*self.held.pop(source), strict=True)
            out.extend(zip(items, self._adapted(np.stack(probs), source), strict=True))
        return out

    def _adapted(self, probs: np.ndarray, source: str) -> np.ndarray:
        # Calibrated posteriors are softmax(z / T): T * log(p) is z up to a per-row constant, so the
        # network's own posteriors come back exactly; adapt those, then apply the temperature again.
        temperature = self.bundle.temperature
        logits = temperature * np.log(np.maximum(probs.astype(np.float64), np.finfo(np.float64).tiny))
        return calibrated(self.bundle.source_logits(logits, [source] * len(probs)), temperature)
