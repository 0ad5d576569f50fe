"""All AWS I/O, split by job: ``loop`` (thread, asyncio loop, commands), ``calls`` (client, pacing),
``launcher`` (RunTask), ``tracker`` (DescribeTasks), ``stopper`` (StopTask, settling), ``clusters``
(default capacity provider strategies), ``event_feed`` (events mode's SQS receivers), ``orphan_sweep``
(ListTasks, stopping orphans), ``airflow_db`` (the DB read before a try's end is reported) and
``context`` (what the parts share)."""

from ecs_executor.engine.loop import Engine

__all__ = ["Engine"]
