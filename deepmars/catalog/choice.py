"""Which model's rows a query reads when a catalog holds several models."""

from __future__ import annotations

from collections.abc import Sequence

from deepmars.catalog.connection import Catalog
from deepmars.errors import ConfigError, DeepMarsError


def choose_model(catalog: Catalog, candidates: Sequence[str], named: str | None, tracking_uri: str | None,
                 command: str, kind: str = "") -> str | None:
    """The model ``named`` (by model id, run id, file or registry name), the only candidate, or the
    model of the latest ``command`` run; None when there is no candidate.

    ``candidates`` are the model ids with rows of the queried kind (``kind``: "" or "landmark ").
    """
    ids = list(candidates)
    if named is not None:
        return _named_model(named, ids, tracking_uri, kind)
    if len(ids) <= 1:
        return ids[0] if ids else None
    latest = catalog.latest_run_model(command)
    return latest if latest in ids else ids[0]


def _named_model(named: str, ids: list[str], tracking_uri: str | None, kind: str) -> str:
    if named in ids:
        return named
    from deepmars.models.loading import resolve_source  # a run id, file or registry name -> its model id

    try:
        model_id = resolve_source(named, tracking_uri).model_id
    except DeepMarsError:
        model_id = None
    if model_id not in ids:
        raise ConfigError(f"model: {named!r} has no {kind}rows in this catalog; its {kind}models: "
                          + (", ".join(ids) or "none yet"))
    return model_id
