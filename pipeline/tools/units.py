"""Unit conversion for the ``convert_units`` tool: a small table of everyday units.

Length, mass, volume (US customary for gallons and cups), temperature, speed and time. Each
unit is a factor (and, for temperatures, an offset) to its dimension's base unit. Names are
matched loosely: case, plurals, "degrees", "per hour" and common abbreviations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class UnitError(ValueError):
    """An unknown unit, or two units that measure different things."""


@dataclass(frozen=True)
class Unit:
    """One unit: ``base = value * factor + offset`` in its dimension's base unit."""

    name: str
    dimension: str
    factor: float
    offset: float = 0.0


@dataclass(frozen=True)
class Conversion:
    """A converted quantity, with the canonical unit names."""

    value: float
    from_unit: str
    result: float
    to_unit: str


def _units() -> dict[str, Unit]:
    table: list[tuple[str, str, float, float, tuple[str, ...]]] = [
        # length, base metre
        ("meter", "length", 1.0, 0.0, ("m", "metre", "meters", "metres")),
        ("kilometer", "length", 1000.0, 0.0, ("km", "kilometre", "kilometres", "kms")),
        ("centimeter", "length", 0.01, 0.0, ("cm", "centimetre")),
        ("millimeter", "length", 0.001, 0.0, ("mm", "millimetre")),
        ("mile", "length", 1609.344, 0.0, ("mi",)),
        ("yard", "length", 0.9144, 0.0, ("yd",)),
        ("foot", "length", 0.3048, 0.0, ("ft", "feet")),
        ("inch", "length", 0.0254, 0.0, ("in", "inches")),
        # mass, base kilogram
        ("kilogram", "mass", 1.0, 0.0, ("kg", "kilo", "kilos", "kgs")),
        ("gram", "mass", 0.001, 0.0, ("g", "gramme")),
        ("milligram", "mass", 1e-6, 0.0, ("mg",)),
        ("tonne", "mass", 1000.0, 0.0, ("t", "metric ton", "ton")),
        ("pound", "mass", 0.45359237, 0.0, ("lb", "lbs")),
        ("ounce", "mass", 0.028349523125, 0.0, ("oz",)),
        ("stone", "mass", 6.35029318, 0.0, ("st",)),
        # volume, base litre
        ("liter", "volume", 1.0, 0.0, ("l", "litre", "liters", "litres")),
        ("milliliter", "volume", 0.001, 0.0, ("ml", "millilitre")),
        ("gallon", "volume", 3.785411784, 0.0, ("gal", "us gallon")),
        ("quart", "volume", 0.946352946, 0.0, ("qt",)),
        ("pint", "volume", 0.473176473, 0.0, ("pt",)),
        ("cup", "volume", 0.2365882365, 0.0, ()),
        ("fluid ounce", "volume", 0.0295735295625, 0.0, ("fl oz", "floz")),
        ("tablespoon", "volume", 0.01478676478125, 0.0, ("tbsp",)),
        ("teaspoon", "volume", 0.00492892159375, 0.0, ("tsp",)),
        # temperature, base kelvin
        ("kelvin", "temperature", 1.0, 0.0, ("k",)),
        ("celsius", "temperature", 1.0, 273.15, ("c", "centigrade")),
        ("fahrenheit", "temperature", 5 / 9, 273.15 - 32 * 5 / 9, ("f",)),
        # speed, base metre per second
        ("meter per second", "speed", 1.0, 0.0, ("m/s", "mps", "metre per second")),
        ("kilometer per hour", "speed", 1000 / 3600, 0.0, ("km/h", "kph", "kilometre per hour")),
        ("mile per hour", "speed", 1609.344 / 3600, 0.0, ("mph",)),
        ("knot", "speed", 1852 / 3600, 0.0, ("kn", "kt")),
        # time, base second
        ("second", "time", 1.0, 0.0, ("s", "sec", "secs")),
        ("minute", "time", 60.0, 0.0, ("min", "mins")),
        ("hour", "time", 3600.0, 0.0, ("h", "hr", "hrs")),
        ("day", "time", 86400.0, 0.0, ("d",)),
        ("week", "time", 7 * 86400.0, 0.0, ("wk",)),
    ]
    units: dict[str, Unit] = {}
    for name, dimension, factor, offset, aliases in table:
        unit = Unit(name, dimension, factor, offset)
        for alias in (name, *aliases):
            units[alias] = unit
    return units


UNITS = _units()


def find_unit(name: str) -> Unit:
    """The unit called ``name`` (loosely matched).

    Raises:
        UnitError: no unit by that name.
    """
    key = " ".join(name.strip().lower().replace("°", " ").replace(".", " ").split())
    key = re.sub(r"^(?:degrees?|deg)\s+", "", key)
    key = key.replace(" an hour", " per hour").replace(" a second", " per second")
    # "kilometres per hour" -> "kilometre per hour"; "inches" -> "inch".
    singular = re.sub(r"^(\w+?)s(\s+per\b)", r"\1\2", key)
    candidates = [key, singular, key.removesuffix("s"), key.removesuffix("es")]
    for candidate in candidates:
        if candidate in UNITS:
            return UNITS[candidate]
    raise UnitError(f"unknown unit {name!r}")


# Words between the quantities of a conversion, never its units ("in" is also inches).
_CONNECTORS = frozenset({"in", "to", "into", "as", "is", "s", "t", "d", "h"})


def find_conversion(text: str) -> tuple[float, str, str] | None:
    """A conversion written in words, as small models send it to the calculator: the first
    number, the first unit named, and the next unit named of the same kind ("5 miles *
    1.609 kilometers per mile" -> 5, mile, kilometer). None if there is no such pair."""
    number = re.search(r"-?\d+(?:\.\d+)?", text)
    if number is None:
        return None
    words = re.findall(r"[a-z°/]+", text.lower().replace("per", " per "))
    found: list[Unit] = []
    index = 0
    while index < len(words):
        for size in (3, 2, 1):
            phrase = " ".join(words[index : index + size])
            if size > 1 and len(words) - index < size:
                continue
            if phrase in _CONNECTORS:
                continue
            try:
                found.append(find_unit(phrase))
            except UnitError:
                continue
            index += size
            break
        else:
            index += 1
    if not found:
        return None
    source = found[0]
    target = next((u for u in found[1:] if u.dimension == source.dimension and u != source), None)
    if target is None:
        return None
    return float(number.group()), source.name, target.name


def convert(value: float, from_unit: str, to_unit: str) -> Conversion:
    """``value`` in ``from_unit`` expressed in ``to_unit``.

    Raises:
        UnitError: an unknown unit, or units of different dimensions.
    """
    source, target = find_unit(from_unit), find_unit(to_unit)
    if source.dimension != target.dimension:
        raise UnitError(
            f"cannot convert {source.name} ({source.dimension}) to {target.name} "
            f"({target.dimension})"
        )
    base = value * source.factor + source.offset
    result = (base - target.offset) / target.factor
    return Conversion(value, source.name, result, target.name)


_IRREGULAR = {"foot": "feet", "inch": "inches", "stone": "stone"}
_DEGREES = {"celsius": "Celsius", "fahrenheit": "Fahrenheit"}


def spoken_name(name: str, value: float) -> str:
    """A unit's name as said with ``value``: "1 mile", "5 miles per hour", "20 degrees Celsius"."""
    if name in _DEGREES:
        return f"degree{'' if value == 1 else 's'} {_DEGREES[name]}"
    if value == 1 or name == "kelvin":
        return name
    first, _, rest = name.partition(" ")
    first = _IRREGULAR.get(first, first + "s")
    return f"{first} {rest}" if rest else first
