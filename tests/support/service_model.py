"""Requests checked against botocore's service model, as the real service would validate them: the one
check every test double here (fake_ecs, fake_kms) makes before answering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.model import ServiceModel
from botocore.session import get_session
from botocore.validate import ParamValidator


def service_model(service: str) -> ServiceModel:
    return get_session().get_service_model(service)


def assert_valid_request(model: ServiceModel, operation: str, params: Mapping[str, Any]) -> None:
    """Fail the test with botocore's own report when ``params`` is not a valid ``operation`` request."""
    report = ParamValidator().validate(dict(params), model.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()
