"""The catalog: one SQLite file that predict.py, landmarks.py classify and the web search share.

- ``schema``: tables, migrations, and each table's row type and key (``TABLES``);
- ``count_tables``: the count tables searches read (exact counts at any threshold and sol range);
- ``rows``: typed rows (NamedTuples in column order) and ``ModelInfo``;
- ``sqlite_file``: opening a versioned SQLite file of one kind (create, migrate, refuse a foreign
  file), lock errors and write transactions, for the catalog and the label queue alike;
- ``connection``: ``Catalog`` (a catalog file opened that way, its models, runs and reads);
- ``paths``: how a file path is stored (undecodable bytes as ``\\xNN``) and turned back into the file name;
- ``predictions`` / ``landmarks``: the stores that write whole-image and per-landmark rows;
- ``merge``: shards or deliveries into one catalog, every table.
"""

from deepmars.catalog.connection import Catalog, open_reader
from deepmars.catalog.rows import (
                                   ErrorRow,
                                   LandmarkCountRow,
                                   LandmarkImageRow,
                                   LandmarkRow,
                                   ModelInfo,
                                   PredictionRow,
                                   RunRow,
                                   utc_now,
)
from deepmars.catalog.schema import SCHEMA_VERSION, TABLES, TIME_COLUMNS
from deepmars.catalog.sqlite_file import CatalogLocked

__all__ = ["Catalog", "CatalogLocked", "ErrorRow", "LandmarkCountRow", "LandmarkImageRow", "LandmarkRow",
           "ModelInfo", "PredictionRow", "RunRow", "SCHEMA_VERSION", "TABLES", "TIME_COLUMNS", "open_reader",
           "utc_now"]
