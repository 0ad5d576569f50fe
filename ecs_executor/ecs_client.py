"""Moved to ``ecs_executor.aws``; this shim keeps ``engine.py``'s import working until it switches."""

from ecs_executor.aws import default_client as default_client  # TODO(lead): engine.py -> aws.ecs_client
