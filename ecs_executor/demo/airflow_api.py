"""What the demo and the tests ask a running Airflow: its public REST API (log in as the admin, find a
DAG, trigger it, follow the run) and, for what that API does not show (the ECS task ARN a task instance
ran in, ``external_executor_id``), its metadata database.

A mixin: ``deployment.LocalDeployment`` supplies where Airflow is (``api_url``, ``home``, ``db_path``) and
``check_alive``, so a wait stops as soon as a component has died instead of at its timeout.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ADMIN_USER = "admin"
#: How long one REST call may take before it counts as timed out.
API_TIMEOUT_SECONDS = 30.0


class AirflowApiError(RuntimeError):
    """Airflow did not answer, or a DAG or a run did not get where it should within its timeout."""


class AirflowApi:
    """Calls to the deployment's Airflow, as its admin user (the token is fetched once)."""

    _token: str | None = None

    @property
    def api_url(self) -> str:
        raise NotImplementedError

    @property
    def home(self) -> Path:
        raise NotImplementedError

    @property
    def db_path(self) -> Path:
        raise NotImplementedError

    def check_alive(self) -> None:
        raise NotImplementedError

    def wait_http(self, url: str, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
            time.sleep(0.5)
        raise AirflowApiError(f"{name} did not answer at {url} within {timeout:.0f}s")

    def admin_password(self) -> str:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        return str(json.loads(path.read_text())[ADMIN_USER])

    def token(self) -> str:
        if self._token is None:
            body = json.dumps({"username": ADMIN_USER, "password": self.admin_password()}).encode()
            req = urllib.request.Request(
                f"{self.api_url}/auth/token", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                self._token = str(json.loads(resp.read())["access_token"])
        return self._token

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One REST call; a GET that times out is asked again (twice): on a loaded machine the one API
        server, busy with every task's Execution API calls, can take longer than 30 s to answer."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(3):
            req = urllib.request.Request(
                f"{self.api_url}/api/v2{path}",
                data=data,
                method=method,
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token()}"},
            )
            try:
                with urllib.request.urlopen(req, timeout=API_TIMEOUT_SECONDS) as resp:
                    return json.loads(resp.read() or b"null")
            except TimeoutError:
                if method != "GET" or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                self.api("GET", f"/dags/{dag_id}")
                return
            except urllib.error.HTTPError as exc:
                if exc.code != 404:
                    raise
            time.sleep(1)
        raise AirflowApiError(
            f"DAG {dag_id} was not parsed within {timeout:.0f}s; see logs/dag-processor.log"
        )

    def trigger(self, dag_id: str) -> str:
        """Unpause and trigger; a 5xx (SQLite's lock not had within the api-server's busy timeout on a
        loaded machine: nothing written) is retried."""
        for attempt in range(3):
            try:
                self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
                run = self.api("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None})
                return str(run["dag_run_id"])
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == 2:
                    raise
                time.sleep(2)
        raise AssertionError("unreachable")

    def dag_run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task_rows(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Task instances with the ECS task ARN (external_executor_id is not in the REST API)."""
        query = (
            "SELECT task_id, map_index, state, external_executor_id, queued_dttm, start_date, end_date, "
            "try_number FROM task_instance WHERE dag_id = ? AND run_id = ? ORDER BY task_id, map_index"
        )
        for _ in range(20):
            try:
                with contextlib.closing(
                    sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
                ) as db:
                    db.row_factory = sqlite3.Row
                    return [dict(row) for row in db.execute(query, (dag_id, run_id))]
            except sqlite3.OperationalError:
                time.sleep(0.2)
        return []

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float, on_tick: Any = None) -> str:
        deadline = time.monotonic() + timeout
        state = "queued"
        while time.monotonic() < deadline:
            self.check_alive()
            state = self.dag_run_state(dag_id, run_id)
            if on_tick is not None:
                on_tick(self.task_rows(dag_id, run_id))
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise AirflowApiError(f"DAG run {run_id} still {state} after {timeout:.0f}s")
