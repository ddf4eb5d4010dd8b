"""The unit table: everyday conversions, loose names, and exact refusals."""

from __future__ import annotations

import pytest

from pipeline.tools.units import UnitError, convert, find_conversion, find_unit, spoken_name


@pytest.mark.parametrize(
    ("value", "source", "target", "result"),
    [
        (5, "miles", "kilometers", 8.04672),
        (1, "km", "m", 1000),
        (12, "inches", "feet", 1),
        (1, "foot", "cm", 30.48),
        (2.2, "lbs", "kg", 0.997903214),
        (1, "stone", "pounds", 14),
        (16, "oz", "pound", 1),
        (1, "gallon", "liters", 3.785411784),
        (2, "cups", "ml", 473.176473),
        (3, "teaspoons", "tablespoon", 1),
        (100, "degrees Fahrenheit", "Celsius", 37.7777777),
        (0, "°C", "°F", 32),
        (-40, "celsius", "fahrenheit", -40),
        (0, "kelvin", "celsius", -273.15),
        (60, "miles per hour", "km/h", 96.56064),
        (100, "kilometres per hour", "metres per second", 27.7777777),
        (10, "knots", "mph", 11.5077945),
        (90, "minutes", "hours", 1.5),
        (2, "weeks", "days", 14),
    ],
)
def test_conversions(value: float, source: str, target: str, result: float) -> None:
    assert convert(value, source, target).result == pytest.approx(result)


def test_names_are_canonical_in_the_answer() -> None:
    done = convert(5, "Miles", "KM")
    assert (done.from_unit, done.to_unit) == ("mile", "kilometer")


def test_different_dimensions_are_refused() -> None:
    with pytest.raises(UnitError, match=r"cannot convert kilogram \(mass\) to meter \(length\)"):
        convert(1, "kg", "meters")


@pytest.mark.parametrize("name", ["furlongs", "", "parsecs per fortnight"])
def test_unknown_units_are_refused(name: str) -> None:
    with pytest.raises(UnitError, match="unknown unit"):
        find_unit(name)


@pytest.mark.parametrize(
    ("name", "value", "spoken"),
    [
        ("mile", 1, "mile"),
        ("mile", 5, "miles"),
        ("foot", 2, "feet"),
        ("mile per hour", 60, "miles per hour"),
        ("celsius", 20, "degrees Celsius"),
        ("fahrenheit", 1, "degree Fahrenheit"),
        ("kelvin", 300, "kelvin"),
    ],
)
def test_spoken_names(name: str, value: float, spoken: str) -> None:
    assert spoken_name(name, value) == spoken


@pytest.mark.parametrize(
    ("text", "found"),
    [
        # What qwen2.5-coder-0.5b sends to the calculator for "How many kilometers is 5 miles?".
        ("5 miles * 1.609375 kilometers per mile", (5.0, "mile", "kilometer")),
        ("3 * 2.20462 kilograms pounds", (3.0, "kilogram", "pound")),
        ("100 degrees fahrenheit to celsius", (100.0, "fahrenheit", "celsius")),
        ("60 miles per hour in km/h", (60.0, "mile per hour", "kilometer per hour")),
        ("5 kilometers in miles", (5.0, "kilometer", "mile")),
        ("17 * 23", None),
        ("5 miles", None),
        ("5 miles in kilograms", None),
    ],
)
def test_find_conversion(text: str, found: tuple[float, str, str] | None) -> None:
    assert find_conversion(text) == found
