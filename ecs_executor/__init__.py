"""Apache Airflow 3 executor that runs every task instance in its own Amazon ECS task.

``AIRFLOW__CORE__EXECUTOR=ecs_executor.EcsExecutor``. The executor class is imported lazily so that
``python -m ecs_executor.local_ecs`` and the pure modules do not pay for importing Airflow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["EcsExecutor", "__version__"]

if TYPE_CHECKING:
    from ecs_executor.executor import EcsExecutor


def __getattr__(name: str) -> Any:
    if name == "EcsExecutor":
        from ecs_executor.executor import EcsExecutor

        return EcsExecutor
    raise AttributeError(f"module 'ecs_executor' has no attribute {name!r}")
