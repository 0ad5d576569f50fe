"""The orphan sweep against the local ECS endpoint and a real, migrated Airflow DB (SQLite): it stops the
task no scheduler tracks, after the grace period, and nothing else."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ecs_executor import messages as m
from ecs_executor.config.settings import settings_from_mapping
from ecs_executor.engine import Engine
from ecs_executor.engine.orphan_sweep import TaskInstanceReader
from ecs_executor.request.run_task import STARTED_BY, RunTaskBuilder, TryIdentity, identity_tags, started_by
from tests.conftest import executor_options
from tests.support.executor_view import engine_of
from tests.support.fake_ecs import launch, of, results_until, started
from tests.support.fault_helpers import CLUSTER, CONN_ENV, FAMILY, boto_client, connection_json

GRACE = 2.0
RUN_ID = "manual__orphans"


@pytest.fixture(scope="module")
def airflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow metadata DB migrated by Airflow itself, in its own file."""
    home = tmp_path_factory.mktemp("orphans-db")
    path = home / "airflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__DATABASE")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{path}")
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO dag_run (dag_id, run_id, run_type, run_after, state) VALUES (?, ?, 'manual', ?, ?)",
            ("dag", RUN_ID, "2026-12-01 00:00:00", "running"),
        )
    return path


def put_ti(
    db_path: Path,
    task_id: str,
    state: str | None,
    arn: str | None,
    try_number: int = 1,
    queued_by: int | None = None,
) -> None:
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        db.execute(
            "INSERT INTO task_instance (id, task_id, dag_id, run_id, map_index, state, try_number, pool, "
            "pool_slots, external_executor_id, queued_by_job_id) "
            "VALUES (?, ?, 'dag', ?, -1, ?, ?, 'default_pool', 1, ?, ?)",
            (uuid.uuid4().hex, task_id, RUN_ID, state, try_number, arn, queued_by),
        )


def put_scheduler_job(db_path: Path, state: str) -> int:
    """A scheduler job row with a heartbeat just now (alive when ``state`` is running)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    with contextlib.closing(sqlite3.connect(db_path)) as db, db:
        cursor = db.execute(
            "INSERT INTO job (state, job_type, latest_heartbeat) VALUES (?, 'SchedulerJob', ?)", (state, now)
        )
        return int(cursor.lastrowid or 0)


def session_factory(db_path: Path) -> Callable[[], Any]:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    engine = create_engine(f"sqlite:///{db_path}")
    return lambda: Session(engine)


def run_directly(url: str, task_id: str, by: str = STARTED_BY) -> str:
    """A task started by RunTask with our startedBy and tags, as another scheduler's executor would."""
    answer = boto_client(url).run_task(
        cluster=CLUSTER,
        taskDefinition=FAMILY,
        launchType="EC2",
        startedBy=by,
        tags=identity_tags(TryIdentity("dag", task_id, RUN_ID, 1)),
    )
    return str(answer["tasks"][0]["taskArn"])


def status(url: str, arn: str) -> dict[str, Any]:
    (task,) = boto_client(url).describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"]
    return dict(task)


@contextlib.contextmanager
def engine_on(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv(CONN_ENV, connection_json(url))
    # The loop's own sweeps wait an hour: the test drives sweep_once itself.
    options = {"orphan_sweep": "True", "orphan_sweep_interval": "3600", "launch_type": "EC2"}
    settings = settings_from_mapping(executor_options(CLUSTER, task_definition=FAMILY, **options))
    with started(Engine(settings, m.Channel(), builder=RunTaskBuilder(settings))) as engine:
        yield engine


def sweep(engine: Engine) -> list[str]:
    assert engine.orphan_sweeper is not None
    return engine.run_coroutine(engine.orphan_sweeper.sweep_once, timeout=30)


def test_only_the_task_nobody_tracks_is_stopped_after_the_grace_period(
    local_ecs: Any,
    airflow_db: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = local_ecs.url
    others = run_directly(url, "others")  # another scheduler's: its task instance runs with this ARN
    put_ti(airflow_db, "others", "running", others)
    queued = run_directly(url, "queued")  # another scheduler's, ARN stored, not started yet
    put_ti(airflow_db, "queued", "queued", queued)
    orphan = run_directly(url, "orphan")  # its task instance finished: nobody expects this task
    put_ti(airflow_db, "orphan", "success", orphan)
    retried = run_directly(url, "retried")  # its try failed and the next runs in another task
    put_ti(airflow_db, "retried", "running", "arn:aws:ecs:us-east-1:123456789012:task/x/1", try_number=2)
    no_ti = run_directly(url, "callback:notify")  # no task instance (a callback): not judged
    team = run_directly(url, "team", by=started_by("blue"))  # another team's executor's: not listed
    put_ti(airflow_db, "team", "success", team)
    put_ti(airflow_db, "mine", "success", None)  # the DB lags behind this scheduler's own launch
    # Task instances queued by scheduler jobs: another live one (its sweep judges: it may still track
    # the task), a dead one, and this scheduler's own.
    alive, dead, own = (put_scheduler_job(airflow_db, s) for s in ("running", "failed", "running"))
    alive_others = run_directly(url, "alive_others")
    put_ti(airflow_db, "alive_others", "success", alive_others, queued_by=alive)
    dead_others = run_directly(url, "dead_others")
    put_ti(airflow_db, "dead_others", "success", dead_others, queued_by=dead)
    own_queued = run_directly(url, "own_queued")
    put_ti(airflow_db, "own_queued", "success", own_queued, queued_by=own)

    with engine_on(url, monkeypatch) as engine:
        assert engine.orphan_sweeper is not None
        engine.orphan_sweeper.reader = TaskInstanceReader(session_factory(airflow_db))
        engine.orphan_sweeper.grace = GRACE
        engine.orphan_sweeper.job_id = own
        launch(engine, "mine")  # dag / mine / run: tracked by this engine
        (launched,) = [r for r in results_until(engine, of(m.Launched, "mine")) if isinstance(r, m.Launched)]
        assert sweep(engine) == []  # first seen unknown now: the grace period starts
        time.sleep(GRACE)
        stopped = sweep(engine)
        counters = dict(engine.counters)

    assert sorted(stopped) == sorted([orphan, retried, dead_others, own_queued])
    assert counters["orphans_stopped"] == 4
    for arn in (orphan, retried, dead_others, own_queued):
        task = status(url, arn)
        assert task["desiredStatus"] == "STOPPED"
        assert task["stoppedReason"].startswith(
            "Airflow ECS executor: orphaned task, tracked by no scheduler"
        )
    assert "task instance is success at try 1, with this task" in status(url, orphan)["stoppedReason"]
    for arn in (others, queued, no_ti, team, launched.task_arn, alive_others):
        assert status(url, arn)["desiredStatus"] == "RUNNING", arn
    # Once Airflow has configured logging (an earlier test did) our lines go to stdout, past caplog.
    printed = [line for line in capfd.readouterr().out.splitlines() if "[warning  ]" in line]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] or printed
    lines = [line for line in lines if "Stopping orphaned ECS task" in line]
    assert len(lines) == 4
    (line,) = [line for line in lines if orphan in line]
    assert "dag_id=dag" in line and "task_id=orphan" in line and f"run_id={RUN_ID}" in line


def test_a_sweep_that_cannot_read_the_db_stops_nothing(
    local_ecs: Any, airflow_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = run_directly(local_ecs.url, "unread")
    put_ti(airflow_db, "unread", "failed", orphan)

    def broken() -> Any:
        raise OSError("database is unreachable")

    with engine_on(local_ecs.url, monkeypatch) as engine:
        assert engine.orphan_sweeper is not None
        engine.orphan_sweeper.reader = TaskInstanceReader(broken)
        engine.orphan_sweeper.grace = GRACE
        assert sweep(engine) == []
        time.sleep(GRACE)
        assert sweep(engine) == []
        # The DB is back: only a read can show a task unknown, so the grace period starts now.
        engine.orphan_sweeper.reader = TaskInstanceReader(session_factory(airflow_db))
        assert sweep(engine) == []
        time.sleep(GRACE)
        assert sweep(engine) == [orphan]
    assert status(local_ecs.url, orphan)["desiredStatus"] == "STOPPED"


def test_the_executor_hands_the_schedulers_job_id_to_the_sweep(
    local_ecs: Any, point_at: Callable[..., None], executors: Callable[..., Any]
) -> None:
    """Airflow sets ``executor.job_id`` before ``start()``: the sweep tells its own job from the others."""
    point_at(local_ecs.url, orphan_sweep="True")
    executor = executors(start=False)
    executor.job_id = 42
    executor.start()
    sweeper = engine_of(executor).orphan_sweeper
    assert sweeper is not None and sweeper.job_id == 42


def test_no_orphan_sweep_unless_asked(
    local_ecs: Any, point_at: Callable[..., None], executors: Callable[..., Any]
) -> None:
    point_at(local_ecs.url, orphan_sweep="False")
    assert engine_of(executors()).orphan_sweeper is None
