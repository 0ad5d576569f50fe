"""moto's KMS in server mode for the ``encrypted`` runs (``workload_kms_key`` set), counting what it answers.

The bench's ECS endpoint runs no containers, so only the executor calls KMS: DescribeKey at start-up and
GenerateDataKey once per data key lifetime. moto runs on a thread of the orchestrator process
(``benchmarks/run.py``), apart from the measured worker process, so its CPU is not billed to the executor;
every request it answers (errors included) is counted by operation.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ecs_executor.demo.token_audit import create_workload_key
from ecs_executor.local_ecs.local_sqs import LocalSqs

REGION = "us-east-1"
#: KMS operation -> requests moto's KMS answered in this process.
_ANSWERED: Counter[str] = Counter()


def _count_requests() -> None:
    """Wrap moto's KMS request handler once per process (every KMS operation goes through it)."""
    from moto.kms.responses import KmsResponse

    if getattr(KmsResponse.call_action, "_counting", False):
        return
    original = KmsResponse.call_action

    def call_action(self: Any) -> Any:
        _ANSWERED[self._get_action()] += 1
        return original(self)

    call_action._counting = True  # type: ignore[attr-defined]
    KmsResponse.call_action = call_action  # type: ignore[method-assign]


class CountingKms:
    """``with CountingKms() as kms``: ``kms.url``, ``kms.key_arn``, then ``kms.calls()`` since entering."""

    def __init__(self) -> None:
        self._moto = LocalSqs(region=REGION)
        self.url = ""
        self.key_arn = ""
        self._before: Counter[str] = Counter()

    def __enter__(self) -> CountingKms:
        _count_requests()
        self.url = self._moto.start()
        self.key_arn = create_workload_key(self.url, REGION)
        self._before = Counter(_ANSWERED)
        return self

    def calls(self) -> dict[str, int]:
        return dict(Counter(_ANSWERED) - self._before)

    def __exit__(self, *exc: Any) -> None:
        self._moto.stop()
