"""An HTTP proxy in front of moto that holds every request until the test opens the gate.

It proves the scheduler side never waits on the network: while the gate is shut, ECS "answers" never,
yet heartbeat() must keep returning.
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from tests.support.http_proxy import ForwardingProxy


class GateProxy(ForwardingProxy):
    def __init__(self, upstream: str):
        super().__init__(upstream, name="gate-proxy")
        self.requests_seen = 0
        self._open = threading.Event()

    def open(self) -> None:
        self._open.set()

    def stop(self) -> None:
        self._open.set()  # release held requests so the server can shut down
        super().stop()

    async def intercept(self, request: web.Request) -> web.Response | None:
        self.requests_seen += 1
        while not self._open.is_set():
            await asyncio.sleep(0.02)
        return None
