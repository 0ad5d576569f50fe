"""``python -m ecs_executor.local_ecs``: serve until SIGTERM/SIGINT, announcing the URL on stdout.

Callers read exactly one line, ``LOCAL_ECS_URL=http://host:port``, so nothing else goes to stdout
(task output goes to log files, diagnostics to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from ecs_executor.local_ecs.knobs import KnobError, knob_specs
from ecs_executor.local_ecs.server import EcsServer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ecs_executor.local_ecs", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bootstrap-cluster", action="append", default=[], metavar="NAME")
    parser.add_argument(
        "--bootstrap-task-definition",
        action="append",
        default=[],
        metavar="JSON|@FILE",
        help="RegisterTaskDefinition input, inline JSON or @path to a JSON file",
    )
    parser.add_argument("--verbose", action="store_true", help="log at INFO level on stderr")
    knobs = parser.add_argument_group("knobs (also settable at run time: POST /_local_ecs/config)")
    for spec in knob_specs():
        flag = "--" + spec.name.replace("_", "-")
        default = spec.default if spec.default is not dataclasses.MISSING else "{}"
        if spec.metadata["flag"]:
            knobs.add_argument(
                flag, dest=spec.name, action="store_true", default=None, help=spec.metadata["help"]
            )
        else:
            help_text = f"{spec.metadata['help']} (default: {default})"
            knobs.add_argument(flag, dest=spec.name, default=None, metavar="VALUE", help=help_text)
    return parser


def _load_definition(value: str) -> dict[str, Any]:
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    definition = json.loads(text)
    if not isinstance(definition, dict):
        raise ValueError("a task definition must be a JSON object")
    return definition


async def _serve(server: EcsServer, host: str, port: int) -> int:
    url = await server.start(host, port)
    print(f"LOCAL_ECS_URL={url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    knobs = {
        spec.name: getattr(args, spec.name) for spec in knob_specs() if getattr(args, spec.name) is not None
    }
    try:
        server = EcsServer(**knobs)
        definitions = [_load_definition(value) for value in args.bootstrap_task_definition]
    except (KnobError, ValueError, OSError) as exc:
        parser.error(str(exc))
    try:
        server.bootstrap(args.bootstrap_cluster, definitions)
    except Exception as exc:  # an EcsError from validation, reported like a CLI usage error
        parser.error(f"bootstrap failed: {exc}")
    return asyncio.run(_serve(server, args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())
