"""Typed configs: a dataclass schema per config, and one way to check a config against it.

Every entry point's config has a schema: dataclasses whose fields are its keys, with their types
(an ``Enum`` for a choice) and defaults. Range and cross-key rules live in the dataclass's
``__post_init__`` and call :func:`require`. :func:`load` merges a config (Hydra's ``DictConfig``
or a plain dict) into its schema and builds the dataclass, running those rules; :func:`validate`
gives the same values back as a typed ``DictConfig``. Every mistake becomes one
:class:`~deepmars.errors.ConfigError` that names the full key, what was given and what is allowed:

- an unknown key: the keys allowed at that place;
- a value of the wrong type, or not one of an Enum's members: the allowed values;
- a missing required value (``???``), an interpolation that cannot be resolved;
- a broken ``__post_init__`` rule.

A key that is a Python keyword (``class``) is declared as a field with another name and
``metadata={"key": "class"}``.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import (
    ConfigKeyError,
    InterpolationResolutionError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    ValidationError,
)

from deepmars.errors import ConfigError

T = TypeVar("T")
_NONE = type(None)


class OutOfRange(ConfigError):
    """A value of the right type that a rule of the schema does not allow."""

    def __init__(self, message: str, key: str = "", got: Any = None, allowed: str = ""):
        # One-argument form too: OmegaConf re-raises exceptions as ``type(exc)(message)``.
        super().__init__(message)
        self.key, self.got, self.allowed = key, got, allowed


def require(ok: bool, key: str, got: Any, allowed: str) -> None:
    """In ``__post_init__``: unless ``ok``, ``key`` (a field of this dataclass) is out of range.

    The defaults of a nested dataclass must pass: OmegaConf builds them when it reads the schema.
    """
    if not ok:
        raise _out_of_range(key, got, allowed)


def _out_of_range(key: str, got: Any, allowed: str) -> OutOfRange:
    return OutOfRange(f"{key}: got {_shown(got)}, allowed: {allowed}", key, got, allowed)


def load(schema: type[T], cfg: Mapping | DictConfig | None, *, prefix: str = "") -> T:
    """``cfg`` checked against ``schema`` and built into it (``__post_init__`` rules included).

    ``prefix`` is where ``cfg`` sits in a larger config (``"model"``), so messages name full keys.
    """
    return _instantiate(merge(schema, cfg, prefix=prefix), prefix)


def validate(schema: type, cfg: Mapping | DictConfig | None, *, prefix: str = "") -> DictConfig:
    """:func:`load`'s values as a typed ``DictConfig`` (for code that reads configs as mappings)."""
    return OmegaConf.structured(load(schema, cfg, prefix=prefix))


def merge(schema: type, cfg: Mapping | DictConfig | None, *, prefix: str = "") -> DictConfig:
    """``cfg`` merged into ``schema``'s defaults, every interpolation resolved; types checked, rules not yet."""
    try:
        merged = OmegaConf.merge(_writable(OmegaConf.structured(schema)), _renamed(cfg, schema))
        try:
            OmegaConf.resolve(merged)
        except InterpolationResolutionError:
            _touch_all(merged)  # raises the same error, now naming its key (resolve's does not)
            raise
    except OmegaConfBaseException as exc:
        raise ConfigError(message(exc, prefix)) from None
    return merged


def plain(cfg: Any) -> Any:
    """A config (dataclass or ``DictConfig``) as plain dicts, lists and strings: Enums become their names.

    For what is saved (checkpoints, model files, MLflow params), so it loads without deepmars's classes.
    """
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        cfg = OmegaConf.structured(cfg)
    if OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return cfg


def describe(tp: Any) -> str:
    """What a value of annotation ``tp`` may be, in words: ``an integer or null``, ``one of a, b``."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        text = " or ".join(describe(a) for a in args if a is not _NONE)
        return f"{text} or null" if _NONE in args else text
    if isinstance(tp, type) and issubclass(tp, Enum):
        return "one of " + ", ".join(m.name for m in tp)
    simple = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in simple:
        return simple[tp]
    if origin in (list, tuple) or tp in (list, tuple):
        items = [a for a in args if a is not Ellipsis]
        return f"a list (each {describe(items[0])})" if items else "a list"
    if origin is dict or tp is dict:
        return f"a mapping (each value {describe(args[1])})" if len(args) == 2 else "a mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {', '.join(config_keys(tp))}"
    return "any value" if tp is Any else getattr(tp, "__name__", str(tp))


def config_keys(schema: type) -> list[str]:
    """The keys a config of this dataclass may hold, sorted (aliases as users write them)."""
    return sorted(f.metadata.get("key", f.name) for f in dataclasses.fields(schema))


def message(exc: OmegaConfBaseException, prefix: str = "") -> str:
    """One line naming the full key and what is allowed there, for an OmegaConf error."""
    key = _join(prefix, _user_key(exc))
    first = str(exc.msg if exc.msg is not None else exc).splitlines()[0]
    where = f"{key}: " if key else ""
    if isinstance(exc, ConfigKeyError) and _is_schema(exc.object_type):
        return f"{where}unknown key; allowed keys: {', '.join(config_keys(exc.object_type))}"
    if isinstance(exc, MissingMandatoryValue):
        expected = _expected(exc)
        return f"{key} is required (missing value '???')" + (f"; allowed: {describe(expected)}" if expected else "")
    if isinstance(exc, ValidationError) and not first.startswith("Merge error"):
        expected = _expected(exc)
        if expected is not None:
            return f"{where}got {_shown(exc.value)}, allowed: {describe(expected)}"
    return where + first


# ------------------------------------------------------------------------------------------ internals
def _instantiate(node: DictConfig, prefix: str) -> Any:
    """``OmegaConf.to_object(node)``, nested sections first: a rule broken inside one is named by its full key."""
    for key in node.keys():
        child = node._get_node(key)
        if isinstance(child, DictConfig) and _is_schema(OmegaConf.get_type(child)) \
                and not child._is_none() and not child._is_missing():
            _instantiate(child, prefix)
    try:
        return OmegaConf.to_object(node)
    except OutOfRange as exc:
        own = _join(prefix, node._get_full_key(None) or "")
        raise _out_of_range(_join(own, _alias(OmegaConf.get_type(node), exc.key)), exc.got, exc.allowed) from None
    except OmegaConfBaseException as exc:
        raise ConfigError(message(exc, prefix)) from None


def _renamed(cfg: Mapping | DictConfig | None, schema: type) -> dict:
    """``cfg`` as a plain dict (interpolations kept), its keyword keys (``class``) renamed to their fields."""
    if cfg is None:
        return {}
    data = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else {
        k: OmegaConf.to_container(v, resolve=False) if OmegaConf.is_config(v) else v for k, v in cfg.items()}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping of settings, got {data!r}")
    for f in dataclasses.fields(schema):
        alias = f.metadata.get("key")
        if alias and alias in data:
            data[f.name] = data.pop(alias)
    _check_sections(schema, data, "")
    return data


def _check_sections(schema: type, data: Mapping, path: str) -> None:
    """A section (a dataclass field) given a single value is named here: OmegaConf's merge would not say where."""
    hints = get_type_hints(schema)
    for f in dataclasses.fields(schema):
        tp, value = hints[f.name], data.get(f.name)
        args = [a for a in get_args(tp) if a is not _NONE]
        section = tp if _is_schema(tp) else args[0] if get_origin(tp) in (Union, types.UnionType) \
            and len(args) == 1 and _is_schema(args[0]) else None
        if section is None or value is None or value == "???":
            continue
        key = _join(path, f.metadata.get("key", f.name))
        if not isinstance(value, Mapping):
            raise _out_of_range(key, value, describe(tp))
        _check_sections(section, value, key)


def _writable(node: DictConfig | ListConfig) -> DictConfig | ListConfig:
    """Frozen dataclasses give read-only nodes; merging the user's values needs them writable."""
    OmegaConf.set_readonly(node, False)
    for key in (node.keys() if isinstance(node, DictConfig) else range(len(node))):
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)):
            _writable(child)
    return node


def _touch_all(node: DictConfig | ListConfig) -> None:
    """Read every set value, so an interpolation that cannot resolve fails with its full key."""
    for k in (node.keys() if isinstance(node, DictConfig) else range(len(node))):
        if not OmegaConf.is_missing(node, k):
            child = node[k]
            if isinstance(child, (DictConfig, ListConfig)):
                _touch_all(child)


def _is_schema(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _alias(schema: Any, name: str) -> str:
    if _is_schema(schema):
        for f in dataclasses.fields(schema):
            if f.name == name:
                return f.metadata.get("key", name)
    return name


def _user_key(exc: OmegaConfBaseException) -> str:
    """The failing key as the user writes it: the last part of an aliased field shown by its alias."""
    full = str(exc.full_key or "")
    if isinstance(exc.key, str) and _is_schema(exc.object_type) and full.endswith(exc.key):
        return full[: len(full) - len(exc.key)] + _alias(exc.object_type, exc.key)
    return full


def _expected(exc: OmegaConfBaseException) -> Any:
    """The annotation of the value that failed, from its dataclass field or its list/dict element type."""
    if _is_schema(exc.object_type) and isinstance(exc.key, str):
        return get_type_hints(exc.object_type).get(exc.key)
    args = [a for a in get_args(exc.ref_type) if a is not Ellipsis]
    if get_origin(exc.ref_type) in (list, tuple) and args:
        return args[0]
    if get_origin(exc.ref_type) is dict and len(args) == 2:
        return args[1]
    return None


def _join(prefix: str, key: str) -> str:
    if not prefix:
        return key
    if not key:
        return prefix
    return f"{prefix}{key}" if key.startswith("[") else f"{prefix}.{key}"


def _shown(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.name
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=False)
    return repr(value)
