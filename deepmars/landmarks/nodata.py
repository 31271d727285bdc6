"""No-data mask: the black triangles that map projection leaves at the borders of HiRISE products.

Those triangles are the most salient thing in the image (a sharp 0-to-surface step), which is why
the 2018 data set has a whole class, "edge", of crops that show them. Masking them keeps the
detector on the surface.

A pixel is no-data when it is dark (<= ``max_value``, to absorb JPEG noise) *and* connected to the
image border through dark pixels: on the real browse image the dark impact-ejecta spot reaches grey
level 0 too, but it is enclosed by surface, so it stays data. The mask then grows by ``margin``
pixels to swallow the JPEG ringing along the boundary.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def nodata_mask(image: np.ndarray, max_value: int = 5, margin: int = 2) -> np.ndarray:
    """Bool mask, True where ``image`` (uint8, 2-D) is border no-data."""
    dark = image <= max_value
    labels, _ = ndi.label(dark, structure=np.ones((3, 3), bool))
    edge_labels = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge_labels = edge_labels[edge_labels > 0]
    mask = np.isin(labels, edge_labels)
    if margin and mask.any():
        mask = ndi.binary_dilation(mask, structure=np.ones((3, 3), bool), iterations=margin)
    return mask
