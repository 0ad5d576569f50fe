"""Typed per-task settings (issue 24). PLACEHOLDER in the "definitions" branch: only the ``Derivation``
value object of the design's interface; the "settings" helper's module replaces this file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Derivation:
    """What RunTask cannot override, so a task asking for it needs a derived task definition."""

    image: str | None = None
    cpu_architecture: str | None = None
    operating_system_family: str | None = None
    gpu: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Only the set fields, in a stable order."""
        fields = (
            ("image", self.image),
            ("cpu_architecture", self.cpu_architecture),
            ("operating_system_family", self.operating_system_family),
            ("gpu", self.gpu),
        )
        return {name: value for name, value in fields if value is not None}
