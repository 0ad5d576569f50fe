"""All AWS I/O, split by job: ``loop`` (thread, asyncio loop, commands), ``calls`` (client, pacing),
``launcher`` (RunTask), ``tracker`` (DescribeTasks), ``stopper`` (StopTask, settling), ``clusters``
(default capacity provider strategies)."""

from ecs_executor.engine.loop import Engine

__all__ = ["Engine"]
