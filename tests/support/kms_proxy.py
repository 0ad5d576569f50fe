"""An HTTP proxy in front of moto's KMS that answers as strictly as KMS, and injects KMS's failures.

moto 5 gives data keys from a disabled key, a key pending deletion and a SIGN_VERIFY key alike; KMS
refuses them (KMS API reference, GenerateDataKey: DisabledException, KMSInvalidStateException,
InvalidKeyUsageException). The proxy looks the key up in moto (DescribeKey, forwarded) before each
GenerateDataKey or Decrypt and answers those errors itself. Tests can also make it throttle or deny.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiohttp
from aiohttp import web

from tests.support.http_proxy import ForwardingProxy

JSON_11 = "application/x-amz-json-1.1"
_CHECKED = ("GenerateDataKey", "Decrypt")


def kms_error_response(code: str, message: str, status: int = 400) -> web.Response:
    """KMS's JSON-1.1 error body, as botocore reads it (``__type`` is the error code)."""
    return web.Response(
        status=status, body=json.dumps({"__type": code, "message": message}), content_type=JSON_11
    )


class StrictKmsProxy(ForwardingProxy):
    def __init__(self, upstream: str):
        super().__init__(upstream, name="kms-proxy")
        self.seen: Counter[str] = Counter()  # operation -> requests that reached the proxy
        self.throttle_next = 0  # GenerateDataKey requests to answer with ThrottlingException
        self.unavailable_next = 0  # ... with a 500 KMSInternalException
        self.denied: set[str] = set()  # operations answered with AccessDeniedException

    async def intercept(self, request: web.Request) -> web.Response | None:
        operation = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        self.seen[operation] += 1
        if operation in self.denied:
            return kms_error_response(
                "AccessDeniedException",
                "User: arn:aws:sts::123456789012:assumed-role/scheduler is not authorized to perform: "
                f"kms:{operation} on this resource because no identity-based policy allows the "
                f"kms:{operation} action",
            )
        if operation == "GenerateDataKey" and self.throttle_next > 0:
            self.throttle_next -= 1
            return kms_error_response("ThrottlingException", "Rate exceeded")
        if operation == "GenerateDataKey" and self.unavailable_next > 0:
            self.unavailable_next -= 1
            return kms_error_response("KMSInternalException", "", 500)
        if operation in _CHECKED:
            return await self._as_kms_would(request)
        return None

    async def _as_kms_would(self, request: web.Request) -> web.Response | None:
        body = json.loads(await request.read() or b"{}")
        key_id = body.get("KeyId")
        if not key_id:
            return None  # Decrypt without KeyId: the key is inside the ciphertext; moto finds it
        metadata = await self._describe(request, key_id)
        if metadata is None:
            return None  # moto answers NotFoundException itself
        arn, state = metadata["Arn"], metadata["KeyState"]
        if state == "Disabled":
            return kms_error_response("DisabledException", f"{arn} is disabled.")
        if state != "Enabled":
            return kms_error_response("KMSInvalidStateException", f"{arn} is {state.lower()}.")
        # moto leaves out KeyUsage for the default (ENCRYPT_DECRYPT).
        usage = metadata.get("KeyUsage") or "ENCRYPT_DECRYPT"
        if usage != "ENCRYPT_DECRYPT" or metadata.get("KeySpec") != "SYMMETRIC_DEFAULT":
            return kms_error_response(
                "InvalidKeyUsageException", f"{arn} key usage is {usage} which is not valid"
            )
        return None

    async def _describe(self, request: web.Request, key_id: str) -> dict[str, Any] | None:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        headers["X-Amz-Target"] = "TrentService.DescribeKey"
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.upstream + "/", data=json.dumps({"KeyId": key_id}), headers=headers) as resp,
        ):
            if resp.status != 200:
                return None
            answer: dict[str, Any] = json.loads(await resp.read())["KeyMetadata"]
            return answer
