"""Where option values come from: Airflow's (team-scoped) config, or a plain mapping for tools and tests.

Only options the user set are returned, so the model's defaults and validation apply to the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from ecs_executor.config.values import SECTION


class ConfLike(Protocol):
    """The slice of Airflow's (team-scoped) config API we read from."""

    def get(self, section: str, key: str, **kwargs: Any) -> str | None: ...


class AirflowConfigSource(PydanticBaseSettingsSource):
    """Feeds the model from Airflow's config; only options the user set are returned."""

    def __init__(self, settings_cls: type[BaseSettings], conf: ConfLike):
        super().__init__(settings_cls)
        self._conf = conf

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        names = [field_name]
        if isinstance(field.validation_alias, AliasChoices):
            names = [str(c) for c in field.validation_alias.choices]
        for name in names:
            value = self._conf.get(SECTION, name, fallback=None)
            if value is not None and str(value) != "":
                return value, field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class DictConf:
    """Option names as written in airflow.cfg mapped to their text."""

    def __init__(self, values: Mapping[str, str]):
        self._values = values

    def get(self, section: str, key: str, **kwargs: Any) -> str | None:
        return self._values.get(key, kwargs.get("fallback"))
