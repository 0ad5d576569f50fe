"""An HTTP proxy in front of moto that holds every request until the test opens the gate.

It proves the scheduler side never waits on the network: while the gate is shut, ECS "answers" never,
yet heartbeat() must keep returning.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import aiohttp
from aiohttp import web


class GateProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream
        self.url = ""
        self.requests_seen = 0
        self._open = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> GateProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def open(self) -> None:
        self._open.set()

    def stop(self) -> None:
        self._open.set()
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        session = aiohttp.ClientSession()

        async def handle(request: web.Request) -> web.Response:
            self.requests_seen += 1
            while not self._open.is_set():
                await asyncio.sleep(0.02)
            body = await request.read()
            headers: dict[str, Any] = {
                k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
            }
            async with session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as resp:
                payload = await resp.read()
                return web.Response(status=resp.status, body=payload, content_type=resp.content_type or None)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        await self._stop.wait()
        await session.close()
        await runner.cleanup()
