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


def precision_note(catalog: Catalog, model_id: str) -> str | None:
    """What a query should say about precision: its rows are a reduced precision's, or others are.

    Reduced-precision rows (bf16, int8) carry their own model id (``<model id>+openvino-bf16``)
    and an ``inference`` entry in the models table, because their classes can differ from the
    exact model's; a query never mixes the two, and says which one it read.
    """
    models = {m.model_id: m.model_cfg.get("inference") for m in catalog.models()}
    inference = models.get(model_id)
    if inference:
        return (f"rows classified at reduced precision ({inference['runtime']} {inference['precision']}): classes "
                f"can differ from the exact model's; model={inference['reference_model_id']} reads the fp32 rows")
    variants = sorted(m for m, info in models.items() if info and info.get("reference_model_id") == model_id)
    if variants:
        return (f"exact (fp32) rows; this catalog also holds reduced-precision rows of this model: "
                f"{', '.join(variants)} (model=<that id> reads them)")
    return None
