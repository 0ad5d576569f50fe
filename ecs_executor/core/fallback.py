"""Spot with an on-demand fallback: which target a try falls back to, when, and its RunTask arguments there.

ECS has no fallback of its own: a capacity provider strategy's ``base`` and ``weight`` spread tasks over
providers, and a provider without capacity simply places nothing (docs/configuration.md, "Spot with an
on-demand fallback"). So the executor moves a try itself, once and for good: after its preferred target
has had no capacity for ``fallback_after_seconds``, or at once when Spot took the capacity of a task whose
container never ran. Pure: options and RunTask arguments in, decisions out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecs_executor.request.layering import LAUNCH_TYPE, PLATFORM_VERSION, STRATEGY, targets_fargate

#: The fallback's own options; a queue profile setting one of them replaces the base's fallback.
FALLBACK_TARGET_OPTIONS = ("fallback_launch_type", "fallback_capacity_provider_strategy")
DEFAULT_FALLBACK_AFTER_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Fallback:
    """Where a try goes when its preferred target has no capacity (or Spot reclaimed it)."""

    target: Mapping[str, Any]  # {"launchType": ...} or {"capacityProviderStrategy": [...]}
    after_seconds: float

    @property
    def label(self) -> str:
        return target_label(self.target)


def target_label(kwargs: Mapping[str, Any]) -> str:
    """The launch target of RunTask arguments, as a task event names it (FARGATE, FARGATE_SPOT+FARGATE)."""
    if kwargs.get(LAUNCH_TYPE):
        return str(kwargs[LAUNCH_TYPE])
    strategy = kwargs.get(STRATEGY) or []
    names = [str(item.get("capacityProvider")) for item in strategy if isinstance(item, Mapping)]
    return "+".join(names) if names else "the cluster's default capacity provider strategy"


def layer_target(options: Any) -> dict[str, Any] | None:
    """The fallback target one layer of options (the settings or a queue profile) sets, if any."""
    if getattr(options, "fallback_launch_type", None):
        return {LAUNCH_TYPE: options.fallback_launch_type}
    strategy = getattr(options, "fallback_capacity_provider_strategy", None)
    if strategy:
        return {STRATEGY: [item.model_dump(exclude_none=True) for item in strategy]}
    return None


def _sets_own_target(profile: Any) -> bool:
    rtk = getattr(profile, "run_task_kwargs", None) or {}
    return bool(
        profile.launch_type or profile.capacity_provider_strategy or LAUNCH_TYPE in rtk or STRATEGY in rtk
    )


def fallback_for(settings: Any, profile: Any = None) -> Fallback | None:
    """The fallback of the base options, or of a queue profile layered over them.

    A profile with a fallback target of its own uses it; a profile that sets its own launch target but no
    fallback has none (the base's fallback was chosen for the base's target); any other profile inherits
    the base's. ``fallback_after_seconds`` layers like any option.
    """
    target = layer_target(settings)
    after = settings.fallback_after_seconds
    if profile is not None:
        own = layer_target(profile)
        if own is not None:
            target = own
        elif _sets_own_target(profile):
            target = None
        if profile.fallback_after_seconds is not None:
            after = profile.fallback_after_seconds
    return None if target is None else Fallback(target, float(after))


def switch(kwargs: Mapping[str, Any], fallback: Fallback) -> dict[str, Any]:
    """RunTask arguments with the launch target replaced by the fallback's, platformVersion kept valid."""
    moved = {k: v for k, v in kwargs.items() if k not in (LAUNCH_TYPE, STRATEGY)}
    moved.update({k: list(v) if isinstance(v, list) else v for k, v in fallback.target.items()})
    if targets_fargate(moved):
        moved.setdefault(PLATFORM_VERSION, "LATEST")
    else:
        moved.pop(PLATFORM_VERSION, None)  # ECS refuses a platform version for EC2 and EXTERNAL
    return {k: moved[k] for k in sorted(moved)}


def capacity_switch_reason(
    fallback: Fallback, preferred: Mapping[str, Any], *, now: float, capacity_since: float | None
) -> str | None:
    """Why a try waiting for capacity moves to its fallback now; None while it keeps waiting."""
    if capacity_since is None or now - capacity_since < fallback.after_seconds:
        return None
    label = target_label(preferred)
    where = (
        f"no {label} capacity"
        if preferred.get(LAUNCH_TYPE) or preferred.get(STRATEGY)
        else f"no capacity on {label}"
    )
    return f"{where} for {now - capacity_since:.0f} s"


def spot_switch_reason() -> str:
    """Why a try whose Spot task was interrupted before its container ran moves to its fallback."""
    return "the Spot task was interrupted before its container ran"


def seconds_until_due(fallback: Fallback, *, now: float, capacity_since: float | None) -> float | None:
    """How long a capacity wait may sleep before the fallback falls due (None: no limit from it)."""
    if capacity_since is None:
        return None
    return max(0.0, capacity_since + fallback.after_seconds - now)


def launched_on(task: Mapping[str, Any], fallback_reason: str) -> str:
    """``FARGATE (fallback: ...)``: the target ECS ran the task on, from RunTask's answer, and why."""
    ran_on = task.get("capacityProviderName") or task.get("launchType") or "its fallback target"
    return f"{ran_on} (fallback: {fallback_reason})"
