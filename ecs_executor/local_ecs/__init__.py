"""A local Amazon ECS endpoint speaking the real JSON protocol, for demos, tests and benchmarks.

It does not import Airflow, and loads botocore's ECS model only when the first request is checked, so
it starts in well under a second.
"""

from ecs_executor.local_ecs.embedded import LocalEcs
from ecs_executor.local_ecs.knobs import KnobError, Knobs
from ecs_executor.local_ecs.server import EcsServer

__all__ = ["EcsServer", "KnobError", "Knobs", "LocalEcs"]
