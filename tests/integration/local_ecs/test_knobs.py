"""Knobs: one table for keyword arguments, CLI flags and the config endpoint, parsed all-or-nothing."""

from __future__ import annotations

import pytest

from ecs_executor.local_ecs.knobs import KnobError, Knobs, knob_specs


def test_defaults_are_fault_free() -> None:
    knobs = Knobs()
    assert knobs.capacity_shortage_seconds == 0 and knobs.capacity_shortage_kind == "resource"
    assert knobs.image_missing is False and knobs.spot_interruption_seconds is None


def test_new_knobs_parse_cli_and_json_values() -> None:
    knobs = Knobs()
    changed = knobs.update(
        {
            "capacity_shortage_seconds": "2.5",
            "capacity_shortage_kind": "Unavailable",
            "image_missing": "true",
            "spot_interruption_seconds": "30",
        }
    )
    assert set(changed) == {
        "capacity_shortage_seconds",
        "capacity_shortage_kind",
        "image_missing",
        "spot_interruption_seconds",
    }
    assert knobs.capacity_shortage_seconds == 2.5 and knobs.capacity_shortage_kind == "unavailable"
    assert knobs.image_missing is True and knobs.spot_interruption_seconds == 30.0
    knobs.update({"spot_interruption_seconds": "none", "capacity_shortage_kind": "provisioning_limit"})
    assert knobs.spot_interruption_seconds is None and knobs.capacity_shortage_kind == "provisioning_limit"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("capacity_shortage_kind", "drought"),
        ("capacity_shortage_seconds", -1),
        ("spot_interruption_seconds", "-5"),
        ("image_missing", "maybe"),
        ("no_such_knob", 1),
    ],
)
def test_bad_values_change_nothing(name: str, value: object) -> None:
    knobs = Knobs()
    with pytest.raises(KnobError):
        knobs.update({"throttle_rate": 0.5, name: value})
    assert knobs.throttle_rate == 0.0  # all-or-nothing


def test_every_knob_has_a_cli_spec() -> None:
    specs = {spec.name: spec for spec in knob_specs()}
    for name in (
        "capacity_shortage_seconds",
        "capacity_shortage_kind",
        "image_missing",
        "spot_interruption_seconds",
    ):
        assert specs[name].metadata["help"]
    assert specs["image_missing"].metadata["flag"] is True
    assert set(Knobs().as_dict()) == set(specs)
