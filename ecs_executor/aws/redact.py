"""Keep workload tokens and KMS data keys out of logs, including botocore's DEBUG request/response dumps.

RunTask's parameters (and DescribeTasks' answers) carry the task command, which holds the workload JWT
(unless workloads are sealed); KMS's GenerateDataKey answer carries the plaintext data key. botocore logs
both at DEBUG; a filter on those loggers masks anything shaped like a JWT and any ``Plaintext`` value.
"""

from __future__ import annotations

import logging
import re

JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
MASK = "***"
# KMS's "Plaintext" member, as JSON on the wire or in a parsed answer's repr (bytes or base64 text).
PLAINTEXT_PATTERN = re.compile(r"""(["']Plaintext["']\s*:\s*b?)(["'])(?:\\.|(?!\2).)*\2""")
# Loggers that echo request parameters or response bodies.
NOISY_LOGGERS = (
    "botocore.endpoint",
    "botocore.parsers",
    "botocore.hooks",
    "botocore.retryhandler",
    "botocore.httpsession",
    "aiobotocore.endpoint",
    "aiobotocore.parsers",
    "aiobotocore.httpsession",
)


def redact(text: str) -> str:
    return PLAINTEXT_PATTERN.sub(rf"\1\2{MASK}\2", JWT_PATTERN.sub(MASK, text))


class RedactTokens(logging.Filter):
    """Rewrites a record whose formatted message contains a JWT; never drops records."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        if "eyJ" in message or "Plaintext" in message:
            record.msg = redact(message)
            record.args = ()
        return True


_FILTER = RedactTokens()


def install() -> None:
    """Idempotent: attach the filter to every logger that may echo a token."""
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
