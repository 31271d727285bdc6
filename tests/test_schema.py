"""deepmars.schema: every kind of config mistake becomes one ConfigError naming the full key and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Optional

import pytest
from omegaconf import OmegaConf

from deepmars.errors import ConfigError
from deepmars.schema import OutOfRange, describe, load, plain, require, validate


class Colour(StrEnum):
    red = "red"
    green = "green"


@dataclass(frozen=True)
class Inner:
    size: int = 3
    scales: list[int] = field(default_factory=lambda: [1])

    def __post_init__(self) -> None:
        require(self.size % 2 == 1, "size", self.size, "an odd integer")


@dataclass
class Outer:
    colour: Colour = Colour.red
    rate: float = 0.5
    name: str = "???"
    inner: Inner = field(default_factory=Inner)
    extra: Inner | None = None
    weights: dict[str, float] = field(default_factory=dict)
    class_name: str | None = field(default=None, metadata={"key": "class"})

    def __post_init__(self) -> None:
        require(0 <= self.rate <= 1, "rate", self.rate, "a number in [0, 1]")


def error(cfg, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load(Outer, cfg, **kwargs)
    return str(info.value)


@pytest.mark.parametrize(("cfg", "message"), [
    ({"name": "a", "colour": "blue"}, "colour: got 'blue', allowed: one of red, green"),
    ({"name": "a", "rate": "fast"}, "rate: got 'fast', allowed: a number"),
    ({"name": "a", "rate": 2}, "rate: got 2.0, allowed: a number in [0, 1]"),
    ({"name": "a", "inner": {"size": 4}}, "inner.size: got 4, allowed: an odd integer"),
    ({"name": "a", "extra": {"size": 2}}, "extra.size: got 2, allowed: an odd integer"),
    ({"name": "a", "inner": {"scales": [1, "x"]}}, "inner.scales[1]: got 'x', allowed: an integer"),
    ({"name": "a", "weights": {"head": "x"}}, "weights.head: got 'x', allowed: a number"),
    ({"name": "a", "inner": {"sise": 3}}, "inner.sise: unknown key; allowed keys: scales, size"),
    ({"name": "a", "colours": "red"}, "colours: unknown key; allowed keys: class, colour, extra, inner, name, rate, "),
    ({"name": "a", "inner": 5}, "inner: got 5, allowed: a mapping with keys scales, size"),
    ({"name": "a", "class": ["x"]}, "class: got ['x'], allowed: a string or null"),
    ({}, "name is required (missing value '???'); allowed: a string"),
    ({"name": "${oc.env:DEEPMARS_NO_SUCH_VARIABLE}"}, "name: KeyError raised while resolving interpolation"),
])
def test_mistakes_name_the_full_key_and_what_is_allowed(cfg, message):
    assert error(cfg).startswith(message), error(cfg)


def test_prefix_places_a_section_in_its_larger_config():
    assert error({"name": "a", "inner": {"size": 4}}, prefix="model").startswith("model.inner.size: got 4")
    assert error({"name": "a", "bogus": 1}, prefix="model").startswith("model.bogus: unknown key")


def test_values_come_back_typed_from_dicts_and_hydra_configs():
    got = load(Outer, OmegaConf.create({"name": "a", "colour": "green", "class": "wheel", "inner": {"size": 5}}))
    assert got == Outer(colour=Colour.green, name="a", inner=Inner(size=5), class_name="wheel")
    typed = validate(Outer, {"name": "a"})
    assert typed.colour == "red" and OmegaConf.get_type(typed.inner) is Inner
    assert plain(got)["colour"] == "green" and type(plain(got)["colour"]) is str


def test_require_outside_a_schema_is_a_config_error_with_its_key():
    with pytest.raises(OutOfRange, match=r"^size: got 2, allowed: an odd integer$"):
        Inner(size=2)


@pytest.mark.parametrize(("tp", "text"), [
    (Optional[int], "an integer or null"),  # noqa: UP045 (the older spelling is described too)
    (list[Colour], "a list (each one of red, green)"),
    (dict[str, float], "a mapping (each value a number)"), (bool, "true or false"),
])
def test_describe(tp, text):
    assert describe(tp) == text
