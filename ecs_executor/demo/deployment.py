"""A whole Airflow-on-"ECS" deployment on one machine: the local ECS endpoint, SQLite, api-server,
scheduler and dag-processor, all as child processes of this one, stopped by PID on exit.

Used by ``make demo`` and by the end-to-end tests, so what the demo shows is what CI checks. This module
starts and stops the processes and gives them their environment; talking to the running Airflow is
``airflow_api.py``'s, and what the endpoint is bootstrapped with ``task_definitions.py``'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecs_executor.config.values import TRACKING_MODES
from ecs_executor.demo.airflow_api import ADMIN_USER, AirflowApi
from ecs_executor.demo.task_definitions import (
    CLUSTER,
    CONTAINER,
    REGION,
    TASK_FAMILY,
    image_task_definition,
    task_definition,
)
from ecs_executor.demo.token_audit import create_workload_key

DEMO_DAGS = Path(__file__).with_name("dags")
OUR_EXECUTOR = "ecs_executor.EcsExecutor"
DEFAULT_COMPONENTS = ("api-server", "scheduler", "dag-processor")
# Deferrable operators and sensors need a triggerer; the default deployment leaves it out to save memory.
WITH_TRIGGERER = (*DEFAULT_COMPONENTS, "triggerer")
EVENTS_QUEUE = "ecs-task-state-changes"
#: The local ECS endpoint's timing profile for deployments built without ``timing=`` (how the end-to-end tests
#: are switched to ``fargate``: ``ECS_EXECUTOR_TEST_TIMING=fargate pytest tests/e2e/test_airflow.py``).
TIMING_ENV = "ECS_EXECUTOR_TEST_TIMING"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DeploymentError(RuntimeError):
    """A component failed to come up; the message names it and its log file."""


@dataclass
class LocalDeployment(AirflowApi):
    """A local Airflow (its components as processes) whose tasks run on the local ECS endpoint.

    Start with ``start()``, always ``stop()`` (also a context manager).

    ``executor`` may name another executor (e.g. ``LocalExecutor``) so a test can compare ours with
    Airflow's on the same DAGs; the local ECS endpoint then is not started. ``airflow_config`` sets
    any ``[section] key`` for every component (``{("scheduler", "use_job_schedule"): "False"}``).

    ``timing`` is the local ECS endpoint's timing profile (``instant`` or ``fargate``, see
    ``local_ecs/timing.py``); left out, it comes from the ``ECS_EXECUTOR_TEST_TIMING`` environment
    variable, else the endpoint's default (``instant``).

    ``tracking="events"`` also runs moto's SQS on a thread of this process with one queue, has the local
    ECS endpoint publish its clusters' task state change events there, and sets the executor's
    ``tracking_mode=events``, ``events_queue=<queue URL>`` and ``AWS_ENDPOINT_URL_SQS=<moto URL>``;
    ``event_bodies`` then holds every event body the queue accepted.

    ``encrypt=True`` seals every workload (docs/security.md): a key at moto's KMS set as ``workload_kms_key``,
    and ``AWS_ENDPOINT_URL_KMS`` for every component and task (where the worker's KMS Decrypt goes).
    """

    workdir: Path
    dags_folder: Path = DEMO_DAGS
    executor: str = OUR_EXECUTOR
    executor_options: dict[str, str] = field(default_factory=dict)
    airflow_config: dict[tuple[str, str], str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Run each task in this worker image with podman instead of as a process on this host.
    worker_image: str | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api_port: int = 0
    log_server_ports: tuple[int, int] = (0, 0)
    ecs_url: str = ""
    tracking: str = "polling"
    timing: str | None = None
    sqs_url: str = ""
    events_queue_url: str = ""
    event_bodies: list[str] = field(default_factory=list)
    encrypt: bool = False
    kms_key_arn: str = ""
    _sqs: Any = None

    @property
    def home(self) -> Path:
        return self.workdir / "airflow-home"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def db_path(self) -> Path:
        return self.home / "airflow.db"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def __post_init__(self) -> None:
        if self.tracking not in TRACKING_MODES:
            raise ValueError(f"tracking must be one of {', '.join(TRACKING_MODES)}, not {self.tracking!r}")
        if self.timing is None:
            self.timing = os.environ.get(TIMING_ENV) or None
        if self.timing is not None:
            from ecs_executor.local_ecs.timing import TIMING_PROFILES

            if self.timing not in TIMING_PROFILES:
                where = "timing" if TIMING_ENV not in os.environ else f"timing (or {TIMING_ENV})"
                raise ValueError(f"{where} must be one of {', '.join(TIMING_PROFILES)}, not {self.timing!r}")
        # Fixed up front: the task environment (inherited via the local endpoint) needs the API URL.
        self.api_port = self.api_port or free_port()
        # The scheduler (LocalExecutor) and the triggerer serve logs on fixed ports by default (8793,
        # 8794): a second deployment on the same machine would fail to bind them.
        if self.log_server_ports == (0, 0):
            self.log_server_ports = (free_port(), free_port())

    def __enter__(self) -> LocalDeployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- environment -----------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment every component shares (tasks inherit it through the local endpoint)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url(busy_timeout=60),
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
                "AIRFLOW__API__SECRET_KEY": self._secret("api"),
                "AIRFLOW__API__PORT": str(self.api_port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
                "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",  # one API server; 5 s fails on a busy host
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_ports[0]),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
                # Local endpoint: dummy credentials, endpoint from the standard botocore variable.
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL_ECS": self.ecs_url,
            }
        )
        options = {
            "cluster": CLUSTER,
            "container_name": CONTAINER,
            "region_name": REGION,
            "task_definition": TASK_FAMILY,
            "launch_type": "EC2",
            "poll_interval": "1",
            "shutdown_timeout": "10",
        }
        if self.tracking == "events":
            options.update(tracking_mode="events", events_queue=self.events_queue_url)
            env["AWS_ENDPOINT_URL_SQS"] = self.sqs_url
        if self.encrypt:
            options["workload_kms_key"] = self.kms_key_arn
            env["AWS_ENDPOINT_URL_KMS"] = self.sqs_url
        options.update(self.executor_options)
        env.update({f"AIRFLOW__AWS_ECS_EXECUTOR__{k.upper()}": v for k, v in options.items()})
        env.update({f"AIRFLOW__{s.upper()}__{k.upper()}": v for (s, k), v in self.airflow_config.items()})
        env.update(self.extra_env)
        return env

    def db_url(self, busy_timeout: int) -> str:
        """SQLite allows one writer; on a busy 2-core machine a scheduler transaction can outlast the
        driver's 5 s default wait for the lock, and a component then dies of "database is locked"."""
        return f"sqlite:///{self.db_path}?timeout={busy_timeout}"

    def _secret(self, name: str) -> str:
        path = self.workdir / f".{name}-secret"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
        return path.read_text()

    # ---- processes ---------------------------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.workdir
        )
        out.close()
        self.processes[name] = proc
        return proc

    def _moto(self) -> Any:
        """moto in server mode on a thread of this process (SQS for events, KMS for sealing)."""
        if self._sqs is None:
            from ecs_executor.local_ecs.local_sqs import LocalSqs

            self._sqs = LocalSqs(region=REGION)
            self.sqs_url = self._sqs.start()
        return self._sqs

    def start_sqs(self) -> str:
        """Events tracking: moto's SQS, the queue events go to, and a record of what it accepts."""
        if not self.events_queue_url:
            moto = self._moto()
            self.event_bodies = moto.record(EVENTS_QUEUE)
            self.events_queue_url = moto.create_queue(EVENTS_QUEUE)
        return self.events_queue_url

    def start_kms(self) -> str:
        """Encrypted mode: moto's KMS and the key that seals the workloads (its ARN)."""
        if not self.kms_key_arn:
            self.kms_key_arn = create_workload_key(self._moto().url, REGION)
        return self.kms_key_arn

    def start_local_ecs(self, *extra_args: str) -> str:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.encrypt:  # first: the endpoint's environment is the one its task processes inherit
            self.start_kms()
        if self.tracking == "events":
            self.start_sqs()
            extra_args = (
                "--events-queue-url",
                self.events_queue_url,
                "--events-endpoint-url",
                self.sqs_url,
                "--events-clusters",
                CLUSTER,
                *extra_args,
            )
        if self.timing is not None:  # first: a --timing among extra_args wins (the last flag counts)
            extra_args = ("--timing", self.timing, *extra_args)
        env = self.env()
        definition = task_definition()
        if self.worker_image:
            # The worker (uid 50000, group 0) writes task logs into the Airflow home's log folder.
            task_logs = self.home / "logs"
            task_logs.mkdir(parents=True, exist_ok=True)
            task_logs.chmod(0o775)
            definition = image_task_definition(self.worker_image, self.dags_folder, task_logs, env)
            extra_args = ("--container-runner", "podman", *extra_args)
        args = [
            sys.executable,
            "-m",
            "ecs_executor.local_ecs",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--log-dir",
            str(self.logs / "tasks"),
            "--bootstrap-cluster",
            CLUSTER,
            "--bootstrap-task-definition",
            json.dumps(definition),
            *extra_args,
        ]
        err = open(self.logs / "local-ecs.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True, cwd=self.workdir
        )
        err.close()
        self.processes["local-ecs"] = proc
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode().strip()
            if line.startswith("LOCAL_ECS_URL="):
                self.ecs_url = line.split("=", 1)[1]
                return self.ecs_url
            if proc.poll() is not None:
                break
        raise DeploymentError(f"local ECS endpoint did not start; see {self.logs / 'local-ecs.log'}")

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one airflow CLI command to completion (e.g. db migrate)."""
        result = subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
        )
        if result.returncode != 0:
            raise DeploymentError(
                f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    @property
    def uses_ecs(self) -> bool:
        """Whether tasks go through our executor (and so need the local ECS endpoint)."""
        return "EcsExecutor" in self.executor

    def start(self, components: tuple[str, ...] = DEFAULT_COMPONENTS) -> None:
        """Migrate the DB and start ``components`` (pass ``WITH_TRIGGERER`` for deferrable tasks)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.ecs_url and self.uses_ecs:
            self.start_local_ecs()
        if self.encrypt:
            self.start_kms()
        self.airflow("db", "migrate")
        # Write-ahead logging: readers (API server, tests) no longer block the writers. Persistent.
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            db.execute("PRAGMA journal_mode=WAL")
        airflow_bin = str(Path(sys.executable).with_name("airflow"))
        for component in components:
            env = self.env()
            extra = []
            if component == "api-server":
                extra = ["--port", str(self.api_port)]
                # Some public API routes (e.g. answering a human-in-the-loop task) write the audit log
                # through a second session while their own holds SQLite's write lock: the request
                # waits for itself for the whole busy timeout, stalling every other writer. Keep it short.
                env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.db_url(busy_timeout=5)
            self._spawn(component, [airflow_bin, component, *extra], env)
        if "api-server" in components:
            self.wait_http(f"{self.api_url}/api/v2/monitor/health", "api-server", timeout=120)

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise DeploymentError(
                    f"{name} exited with code {proc.returncode}; see {self.logs / (name + '.log')}"
                )

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every process group we started, then SIGKILL what is left."""
        stop_process_groups(self.processes, grace)
        self.processes.clear()
        if self._sqs is not None:
            if self.events_queue_url:  # moto's state outlives its server: the next deployment starts empty
                with contextlib.suppress(Exception):
                    self._sqs.client().delete_queue(QueueUrl=self.events_queue_url)
            self._sqs.stop()
            self._sqs = None


def stop_process_groups(processes: dict[str, subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM each process group (the schedulers first, the endpoint last), SIGKILL after ``grace``."""
    order = ["scheduler", "triggerer", "dag-processor", "api-server", "local-ecs"]
    procs = sorted(processes.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 0)
    for _, proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for _, proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def clean(workdir: Path) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
