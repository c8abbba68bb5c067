"""The provisioning API keeps to its OpenAPI document, for any request schemathesis can
derive from it (property-based: bodies, paths and headers generated from the schema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

import ivr.web
from tests.web.test_provisioning import AUTH, TOKEN

DOCUMENT = json.loads((Path(ivr.web.__file__).parent / "openapi.json").read_text("utf-8"))
# Each operation with valid requests (positive) and, where it takes input, invalid ones.
OPERATIONS = [
    (method.upper(), path, mode)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if method in ("get", "put", "patch", "post", "delete")
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or operation.get("parameters") or item.get("parameters")
]


@pytest.fixture
def overrides() -> dict[str, dict[str, Any]]:
    """The provisioning API turned on."""
    return {"api": {"provisioning_token": TOKEN}}


@pytest.mark.parametrize(("method", "path", "mode"), OPERATIONS)
def test_every_answer_matches_the_document(
    app: Flask, method: str, path: str, mode: GenerationMode
) -> None:
    """No generated request gets a 5xx, or an answer (status, headers, body) that the
    document does not describe; requests the schema rules out (negative mode) are refused
    with a 4xx. (Schema-valid
    requests may be refused: a weak PIN or a number that is no phone number is a 422
    the document describes, and the PIN policy is not a JSON schema.)"""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = schema[path][method]

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance])

    check()
