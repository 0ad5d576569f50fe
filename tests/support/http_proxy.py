"""One HTTP proxy in front of an ECS endpoint (moto or LocalEcs), run on its own thread and event loop.

Tests subclass it and override ``intercept`` to hold, count or refuse requests before they reach ECS;
the forwarding and the server's lifecycle stay in one place.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TypeVar

import aiohttp
from aiohttp import web

_Proxy = TypeVar("_Proxy", bound="ForwardingProxy")


class ForwardingProxy:
    """Forwards every request to ``upstream`` unless ``intercept`` answers it; ``url`` is set by ``start``."""

    def __init__(self, upstream: str, name: str = "forwarding-proxy"):
        self.upstream = upstream
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)

    def start(self: _Proxy) -> _Proxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def intercept(self, request: web.Request) -> web.Response | None:
        """Runs on the proxy's loop first: return a response to answer here, None to forward."""
        return None

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        session = aiohttp.ClientSession()

        async def handle(request: web.Request) -> web.Response:
            answer = await self.intercept(request)
            if answer is not None:
                return answer
            body = await request.read()
            headers = {
                k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
            }
            async with session.request(
                request.method, self.upstream + request.path_qs, data=body, headers=headers
            ) as resp:
                payload = await resp.read()
                return web.Response(
                    status=resp.status,
                    body=payload,
                    headers={"Content-Type": resp.headers.get("Content-Type", "application/json")},
                )

        # 16 MiB: the proxy must not refuse a request the endpoint behind it would take.
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        await self._stop.wait()
        await session.close()
        await runner.cleanup()
