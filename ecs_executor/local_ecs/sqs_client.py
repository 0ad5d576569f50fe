"""The endpoint's SQS client: SendMessageBatch, the one call that delivers task state change events.

Hand-written rather than boto3 to keep CPU off the endpoint's event loop (see ``SqsConnection``); the
limits a batch must respect and the Region a queue URL names live here too.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from typing import Any

#: SendMessageBatch limits: 10 entries, 262,144 bytes of bodies in all.
BATCH_ENTRIES = 10
BATCH_BYTES = 256 * 1024

_SQS_REGION = re.compile(
    r"^https?://(?:sqs\.([a-z0-9-]+)\.amazonaws\.com|([a-z0-9-]+)\.queue\.amazonaws\.com)"
)


def queue_region(queue_url: str, default: str) -> str:
    """The Region of an AWS queue URL (either form); ``default`` for any other host, e.g. moto's."""
    match = _SQS_REGION.match(queue_url)
    return (match.group(1) or match.group(2)) if match else default


class SqsError(Exception):
    """SQS answered an error (the ``__type`` and message of its JSON body)."""


class SqsConnection:
    """SendMessageBatch over one kept-alive HTTP connection, signed with botocore's SigV4.

    Not a boto3 client: one of those spends about 1 ms of CPU per call, this about a third of it, and
    the CPU is taken from the endpoint's own event loop (same interpreter). Connection errors, HTTP 5xx
    and throttling are retried twice. One per sender thread: not thread-safe.
    """

    TARGET = "AmazonSQS.SendMessageBatch"
    CONTENT_TYPE = "application/x-amz-json-1.0"
    RETRIED = frozenset({"ThrottlingException", "RequestThrottled", "ServiceUnavailable", "InternalFailure"})

    def __init__(self, endpoint: str, region: str, credentials: Any, timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(endpoint)
        self.url = endpoint
        self.path = parts.path or "/"
        self.host = parts.hostname or "localhost"
        self.port = parts.port
        self.https = parts.scheme == "https"
        self.region = region
        self.credentials = credentials
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def send_message_batch(self, queue_url: str, bodies: list[str]) -> list[dict[str, Any]]:
        """Send ``bodies`` (ids "0", "1", ...); return the entries SQS refused (``Failed``)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        entries = [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)]
        payload = json.dumps({"QueueUrl": queue_url, "Entries": entries}).encode()
        request = AWSRequest(
            "POST",
            self.url,
            data=payload,
            headers={"X-Amz-Target": self.TARGET, "Content-Type": self.CONTENT_TYPE},
        )
        SigV4Auth(self.credentials.get_frozen_credentials(), "sqs", self.region).add_auth(request)
        headers = dict(request.headers.items())
        error: Exception = SqsError("not sent")
        for attempt in range(3):
            # A first connection error is often a kept-alive connection the server had closed: retry
            # on a new one at once; after anything else, wait a little.
            if attempt and not (attempt == 1 and isinstance(error, (OSError, http.client.HTTPException))):
                time.sleep(0.3 * attempt)
            try:
                conn = self._connection()
                conn.request("POST", self.path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                error = exc
                continue
            try:
                answer = json.loads(data or b"{}")
            except ValueError:
                answer = {"message": data[:200].decode(errors="replace")}
            if response.status == 200:
                return list(answer.get("Failed") or [])
            code = str(answer.get("__type", "")).rpartition("#")[2]
            error = SqsError(f"HTTP {response.status} {code}: {answer.get('message', '')}")
            if response.status < 500 and code not in self.RETRIED:
                raise error
        raise error

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            factory = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = factory(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
