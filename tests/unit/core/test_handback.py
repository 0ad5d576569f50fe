"""A try that handed itself back to Airflow (rescheduled, deferred) before its container exited: the rule.
What the facade does with such an end is in tests/unit/test_executor.py."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_executor.core.handback import handed_back
from tests.conftest import make_workload


@pytest.mark.parametrize(
    ("db_state", "db_try", "expected"),
    [
        ("up_for_reschedule", 1, "up_for_reschedule"),  # a reschedule-mode sensor's poke
        ("deferred", 1, "deferred"),
        ("scheduled", 1, "scheduled"),  # Airflow already moved it on: a report would fail it
        ("queued", 1, None),  # the worker never ran the try: reported, so Airflow fails it
        ("running", 1, None),  # ended without telling Airflow: reported
        ("success", 1, None),  # finished: the report is harmless
        ("failed", 1, None),
        (None, 1, None),
        ("scheduled", 2, None),  # a later try: not ours to judge
        ("up_for_reschedule", 2, None),
    ],
)
def test_which_db_states_mean_the_try_handed_itself_back(db_state: Any, db_try: int, expected: Any) -> None:
    key = make_workload("t", try_number=1).ti.key
    assert handed_back(key, db_state, db_try) == expected


def test_keys_without_a_try_number_are_never_handed_back() -> None:
    assert handed_back("callback-key", "scheduled", 1) is None
