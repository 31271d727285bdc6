"""One detected landmark: where it is (working and source pixel frames) and what it measured."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Landmark:
    """A connected high-salience region.

    ``x, y, w, h`` is the region's bounding box in the working image (the frame crops are cut from,
    browse resolution for HiRISE by default); ``src_*`` is the same box in the source image's
    full-resolution pixels, so a crop can be traced back to the product it came from.
    ``index`` is 1-based and names the crop: ``<source>-<index:04d>.jpg``.
    """

    source: str
    index: int
    x: int
    y: int
    w: int
    h: int
    src_x: int
    src_y: int
    src_w: int
    src_h: int
    area: int  # working pixels (detection-scale pixels x scale^2)
    mean_intensity: float  # grey level, at detection scale
    std_intensity: float
    eccentricity: float
    salience: float  # mean detection score over the region: mean absolute grey-level difference to the window
    scale: int  # detection scale that found it (working pixels per detection pixel)

    @property
    def name(self) -> str:
        """Crop file name in the HiRISE v1 layout."""
        return f"{self.source}-{self.index:04d}.jpg"

    def as_row(self) -> dict[str, Any]:
        """Flat dict for tables: the fields, ``index`` as ``id``, the crop ``file`` name, 4 decimals."""
        row = {"file": self.name, **asdict(self)}
        row["id"] = row.pop("index")
        for key in ("mean_intensity", "std_intensity", "eccentricity", "salience"):
            row[key] = round(row[key], 4)
        return row
