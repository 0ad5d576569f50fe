"""Airflow's HA mode on one machine: ``deployment.py``'s deployment on PostgreSQL with several schedulers.

Each scheduler runs its own ``EcsExecutor`` (its own engine and ECS client) against the one local ECS
endpoint, as several scheduler hosts would against one AWS account. ``kill()`` and ``stop_component()``
take one scheduler down (SIGKILL or SIGTERM) while the rest of the deployment keeps running, so a test can
watch another scheduler adopt its tasks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecs_executor.demo.deployment import DeploymentError, LocalDeployment
from ecs_executor.demo.postgres import LocalPostgres

HA_AIRFLOW_CONFIG = {
    # Airflow's defaults are 30 s and 300 s: a dead scheduler's tasks would wait minutes to be adopted.
    # The threshold stays Airflow's 30 s: with 10 s, a loaded 2-core machine (scheduling loops of 8-9 s)
    # had a live scheduler declared dead, and its queued tries without an ARN yet reset to a new try.
    ("scheduler", "scheduler_health_check_threshold"): "30",
    ("scheduler", "orphaned_tasks_check_interval"): "5",
    # Tasks wait for the one API server at most 5 s by default; on a loaded 2-core machine running a
    # whole HA deployment a task's request can take longer, and the task then fails (ReadTimeout).
    ("workers", "execution_api_timeout"): "60",
}


def scheduler_names(count: int) -> tuple[str, ...]:
    return tuple(f"scheduler-{i}" for i in range(1, count + 1))


@dataclass
class HaDeployment(LocalDeployment):
    """``start()`` also starts PostgreSQL; ``stop()`` also removes it."""

    schedulers: int = 2
    postgres: LocalPostgres = field(default_factory=LocalPostgres)
    stopped: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    job_ids: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.airflow_config = {**HA_AIRFLOW_CONFIG, **self.airflow_config}
        # Every scheduler's executor paces itself at its share of the account's ECS buckets.
        self.executor_options.setdefault("schedulers_sharing_budget", str(self.schedulers))

    def db_url(self, busy_timeout: int) -> str:
        return self.postgres.url

    def start(self, components: tuple[str, ...] = ()) -> None:
        """PostgreSQL, migrate, then api-server, N schedulers, dag-processor and triggerer."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.postgres.port:
            self.postgres.start()
        if not self.ecs_url:
            self.start_local_ecs()
        self.airflow("db", "migrate")
        names = components or ("api-server", *scheduler_names(self.schedulers), "dag-processor", "triggerer")
        for name in names:
            self.start_component(name)
        if "api-server" in names:
            self.wait_http(f"{self.api_url}/api/v2/monitor/health", "api-server", timeout=120)

    def start_component(self, name: str) -> None:
        """``scheduler-2`` runs ``airflow scheduler``; other names are the command itself.

        A scheduler is started only once the one before it has its job row, so ``job_ids`` maps each
        process to the ``queued_by_job_id`` of the task instances it queued.
        """
        command = "scheduler" if name.startswith("scheduler") else name
        extra = ["--port", str(self.api_port)] if command == "api-server" else []
        known = {job["id"] for job in self.scheduler_jobs()}
        self._spawn(name, [str(Path(sys.executable).with_name("airflow")), command, *extra], self.env())
        if command != "scheduler":
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.check_alive()
            new = [job["id"] for job in self.scheduler_jobs() if job["id"] not in known]
            if new:
                self.job_ids[name] = new[0]
                return
            time.sleep(0.5)
        raise DeploymentError(f"{name} registered no scheduler job within 120s; see {self.logs / name}.log")

    def kill(self, name: str) -> None:
        """SIGKILL the component's whole process group: a crashed host, no clean-up at all."""
        proc = self.processes.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        self.stopped[name] = proc

    def stop_component(self, name: str, timeout: float = 60) -> int:
        """SIGTERM (what a deployment's rolling restart sends) and wait; returns the exit code."""
        proc = self.processes.pop(name)
        os.killpg(proc.pid, signal.SIGTERM)
        self.stopped[name] = proc
        return proc.wait(timeout=timeout)

    def stop(self, grace: float = 15.0) -> None:
        try:
            super().stop(grace)
        finally:
            self.postgres.stop()

    # ---- database --------------------------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        import psycopg2
        import psycopg2.extras

        conn = psycopg2.connect(host="127.0.0.1", port=self.postgres.port, user="airflow", dbname="airflow")
        with contextlib.closing(conn), conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, params)
            return [dict(row) for row in cur.fetchall()]

    def task_rows(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.query(
            "SELECT task_id, map_index, state, external_executor_id, queued_dttm, start_date, end_date, "
            "try_number, queued_by_job_id FROM task_instance WHERE dag_id = %s AND run_id = %s "
            "ORDER BY task_id, map_index",
            (dag_id, run_id),
        )

    def scheduler_jobs(self) -> list[dict[str, Any]]:
        return self.query(
            "SELECT id, state, hostname, latest_heartbeat FROM job "
            "WHERE job_type = 'SchedulerJob' ORDER BY id"
        )
