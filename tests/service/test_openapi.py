"""The OpenAPI schema against what the service answers: schemathesis generates requests
from `/openapi.json` (valid and invalid ones) and runs every check on each answer (status
documented, body matching its documented schema, content type, no server error, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

from service.app import create_app
from service.settings import Settings
from tests.keras_files import publish_layers, random_layers
from training.store import Store

CONFIG = SchemathesisConfig.from_path(Path(__file__).with_name("schemathesis.toml"))
EXAMPLES = 40  # per operation: a few hundred requests in all


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    store = Store(tmp_path_factory.mktemp("store") / "store")
    publish_layers(store, random_layers())
    app = create_app(Settings(store=store.root, poll_interval=3600))
    with TestClient(app):  # runs the lifespan: the model is loaded
        yield app


@pytest.fixture(scope="module")
def api_schema(app: object) -> schemathesis.Schema:
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_conforms_to_the_schema(
    api_schema: schemathesis.Schema, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    # /v1: predict, batch, models, a model, its card, its card's pictures, healthz, readyz,
    # metrics; /v2: live, ready, server metadata, model and version metadata, model and
    # version ready, infer and version infer
    assert len(operations) == 18
    calls = []
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def conforms(case: schemathesis.Case) -> None:
            calls.append(case.call_and_validate().status_code)

        try:
            conforms()
        except Unsatisfiable:  # nothing in the request can be invalid (GET /healthz...)
            assert mode is GenerationMode.NEGATIVE and not operation.body
    assert len(calls) >= 100, len(calls)
