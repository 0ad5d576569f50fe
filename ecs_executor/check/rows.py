"""What every check row is made of: the row itself, and the probe that asks AWS once per question."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ecs_executor.aws.container_logs import ClientSource
from ecs_executor.config.settings import EcsExecutorSettings
from ecs_executor.config.values import option_label

PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException"}
)


class CheckClients(ClientSource, Protocol):
    """AwsClients, or a test double: clients plus a printable description of the connection used."""

    def describe_connection(self) -> str: ...


@dataclass(frozen=True)
class CheckResult:
    """One table row. ``ok`` decides the exit code; ``status`` (PASS/FAIL/WARN/SKIP) is what is shown.

    WARN and SKIP rows are ``ok``: they describe something that may work, or was not applicable.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    status: str = field(default="")

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", PASS if self.ok else FAIL)


def warn(name: str, detail: str, fix: str = "") -> CheckResult:
    return CheckResult(name, True, detail, fix, WARN)


def skip(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail, "", SKIP)


class Probe:
    """Shared state of one run: clients, settings and memoised Describe answers (or their errors)."""

    def __init__(self, settings: EcsExecutorSettings, clients: CheckClients, team_name: str | None):
        self.settings = settings
        self.clients = clients
        self.team_name = team_name
        self.base = settings.base_run_task_kwargs()
        self._memo: dict[str, Any] = {}

    def opt(self, option: str) -> str:
        return option_label(option, self.team_name)

    def seed(self, key: str, call: Callable[[], Any]) -> None:
        """Store an answer fetched elsewhere (the engine's own async ECS calls) as if ``_once`` had."""
        try:
            self._memo[key] = (True, call())
        except Exception as exc:
            self._memo[key] = (False, exc)

    def _once(self, key: str, call: Callable[[], Any]) -> Any:
        """Call once; re-raise the same error to every check that needs the answer."""
        if key not in self._memo:
            try:
                self._memo[key] = (True, call())
            except Exception as exc:
                self._memo[key] = (False, exc)
        ok, value = self._memo[key]
        if not ok:
            raise value
        return value

    def cluster(self) -> dict[str, Any] | None:
        """The cluster description, or None when ECS reports it missing."""

        def call() -> dict[str, Any] | None:
            return first_cluster(
                self.clients.client("ecs").describe_clusters(clusters=[self.settings.cluster])
            )

        result: dict[str, Any] | None = self._once("cluster", call)
        return result

    def task_definition(self) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            return dict(
                self.clients.client("ecs").describe_task_definition(
                    taskDefinition=self.base["taskDefinition"]
                )["taskDefinition"]
            )

        result: dict[str, Any] = self._once("task_definition", call)
        return result

    @property
    def awsvpc(self) -> dict[str, Any]:
        network = self.base.get("networkConfiguration") or {}
        return dict(network.get("awsvpcConfiguration") or {})


def first_cluster(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    """DescribeClusters answer -> the cluster, or None when ECS reports it missing."""
    clusters = answer.get("clusters") or []
    return dict(clusters[0]) if clusters else None


# ---- individual checks ----------------------------------------------------------------------------


def create_cluster_fix(p: Probe) -> str:
    name = p.settings.cluster.rsplit("/", 1)[-1]
    return (
        f"Create it (aws ecs create-cluster --cluster-name {name} --region {p.settings.region_name}) "
        f"or set {p.opt('cluster')} to an existing cluster in {p.settings.region_name}."
    )
