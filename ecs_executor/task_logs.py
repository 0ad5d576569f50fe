"""Moved to ``ecs_executor.cloudwatch``; this shim keeps ``engine.py``'s lazy import working.

TODO(lead): engine.py -> ``cloudwatch.shared_reader(settings).last_lines(...)``, then delete this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecs_executor.cloudwatch import shared_reader

if TYPE_CHECKING:
    from ecs_executor.cloudwatch import TaskLogReader as Reader
    from ecs_executor.config import EcsExecutorSettings


def TaskLogReader(settings: EcsExecutorSettings) -> Reader:
    """The process's shared reader, so the engine's crash reasons and the UI share clients and caches."""
    return shared_reader(settings)
