"""The demo's REST client against a real HTTP server that is slow once: a GET is asked again, a POST is not
(a loaded machine's API server can take longer than the timeout; a repeated POST could trigger twice)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ecs_executor.demo import airflow_api
from ecs_executor.demo.airflow_api import AirflowApi

CALLS: list[str] = []


class SlowOnce(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        CALLS.append(self.command)
        if len(CALLS) == 1:
            time.sleep(0.6)  # longer than the client's timeout in these tests
        body = json.dumps({"state": "success"}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


class Client(AirflowApi):
    def __init__(self, url: str) -> None:
        self.url = url
        self._token = "token"

    @property
    def api_url(self) -> str:
        return self.url


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setattr(airflow_api, "API_TIMEOUT_SECONDS", 0.3)
    CALLS.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Client(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


def test_a_get_that_times_out_is_asked_again(client: Client) -> None:
    assert client.dag_run_state("dag", "run") == "success"
    assert CALLS == ["GET", "GET"]


def test_a_post_that_times_out_is_not_repeated(client: Client) -> None:
    with pytest.raises(TimeoutError):
        client.api("POST", "/dags/dag/dagRuns", {"logical_date": None})
    time.sleep(0.7)
    assert CALLS == ["POST"]
