"""A fake KMS client for engine unit tests: no network, every request checked against botocore's KMS
service model, scripted failures, and a record of every call. Integration tests use moto's KMS instead."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from tests.support.service_model import assert_valid_request, service_model

_MODEL = service_model("kms")
_METHODS = {"generate_data_key": "GenerateDataKey", "describe_key": "DescribeKey"}
KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def kms_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GenerateDataKey",
    )


class FakeKms:
    """Answers GenerateDataKey with a fresh random key, unless ``script`` (one entry per call, consumed
    first) says otherwise: an exception to raise, or a callable for the answer."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.script: list[BaseException | Callable[[dict[str, Any]], Any]] = []
        self.delay = 0.0
        self.gate: asyncio.Event | None = None  # when set by a test: calls wait until it is set
        self.clients_built = 0
        self.closed = 0

    def __getattr__(self, method: str) -> Any:
        if method not in _METHODS:
            raise AttributeError(method)

        async def call(**kwargs: Any) -> Any:
            assert_valid_request(_MODEL, _METHODS[method], kwargs)
            self.calls.append((method, kwargs))
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(self.delay)
            if self.script:
                step = self.script.pop(0)
                if isinstance(step, BaseException):
                    raise step
                return step(kwargs)
            return {
                "Plaintext": os.urandom(32),
                "CiphertextBlob": b"wrapped-" + os.urandom(8),
                "KeyId": KEY_ARN,
            }

        return call

    def generated(self) -> int:
        return sum(1 for method, _ in self.calls if method == "generate_data_key")

    async def factory(self) -> tuple[Any, contextlib.AsyncExitStack]:
        """A KmsFactory handing out this fake (counted, so tests see rebuilds and closes)."""
        self.clients_built += 1
        stack = contextlib.AsyncExitStack()
        stack.callback(self._closed)
        return self, stack

    def _closed(self) -> None:
        self.closed += 1
