"""The sealed workload's RunTask override stays within ECS's 8,192 characters for the largest realistic
workload (benchmarks/sealed_size.py; figures in docs/benchmarks.md, "Sealed workloads: size")."""

from __future__ import annotations

import pytest

from benchmarks.sealed_size import cases, measure
from ecs_executor.request.ecs_rules import MAX_OVERRIDES_CHARS

# What the largest sealed workload leaves for the rest of the override (environment, executor_config's
# overrides): shrinking it means the envelope grew.
ROOM_LEFT = 3500


@pytest.mark.parametrize("wrapped_bytes", [184, 256])
def test_the_largest_realistic_workload_fits_sealed_with_room_to_spare(wrapped_bytes: int) -> None:
    sizes = [measure(case, wrapped_bytes) for case in cases()]
    worst = max(s.sealed for s in sizes)
    assert worst <= MAX_OVERRIDES_CHARS - ROOM_LEFT, sizes
    # Compression pays for the encoding when ids are words; random ids cost at most a quarter more.
    by_label = {s.label: s for s in sizes}
    assert by_label["250-char ids, words"].sealed <= by_label["250-char ids, words"].plain * 1.05
    assert all(s.sealed <= s.plain * 1.3 for s in sizes), sizes
