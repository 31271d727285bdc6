"""The Atlas app over a generated catalog, configured as atlas.py would configure it."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from deepmars.web.atlas.app import create_atlas_app
from deepmars.web.atlas.options import AtlasOptions, atlas_options

CONF = Path(__file__).resolve().parents[1] / "conf" / "atlas"


def atlas_config(**overrides) -> dict:
    """conf/atlas/atlas.yaml with its synonyms, as a plain dict, with overrides."""
    cfg = OmegaConf.merge(OmegaConf.load(CONF / "atlas.yaml"), OmegaConf.load(CONF / "synonyms.yaml"))
    cfg = OmegaConf.to_container(cfg)
    for hydra_key in ("defaults", "hydra"):  # Hydra's own keys: not part of the composed config
        cfg.pop(hydra_key, None)
    cfg.update(overrides)
    return cfg


def atlas_app(catalog: Path, cache: Path, **overrides):
    opts: AtlasOptions = atlas_options(atlas_config(catalog=str(catalog), cache_dir=str(cache), **overrides))
    return create_atlas_app(opts)
