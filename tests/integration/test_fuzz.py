"""The fuzzing gate (issue 13): schemathesis against the live API, bounded and reproducible.

The real app over HTTP with an API token, the session's Temporal dev server and worker,
every operation of /openapi.json with valid and with invalid input, a fixed seed. It fails
on any 5xx, any request that takes longer than REQUEST_TIMEOUT, and any answer whose
status, content type or body the document does not describe.

Valid cases of the routes under /v1/endpoints/{endpoint_id} and /v1/deliveries/{delivery_id}
name a real endpoint and delivery half of the time (random ids only ever reach the 404),
so /test, /recover, PATCH and /retry are fuzzed past it. Every POST stays on this machine:
an endpoint URL the API would accept is pointed at the local receiver before it is sent (a
generated public host would get the endpoint's first connection); URLs the API refuses, the
ones that found the 500s, are sent as generated.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import pkgutil
import time
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from domain.ids import first_connection_id
from domain.validation import check_endpoint_url
from tests.conftest import free_port
from tests.integration.helpers import delivery_outcome
from tests.receiver import BackgroundServer, Receiver

# schemathesis imports some of its modules on first use. Python 3.11's compile() can fail
# with "AST constructor recursion depth mismatch" when that first use comes deep in a
# hypothesis run on a busy machine (it did, under make test-under-load): import them all now.
for _module in pkgutil.walk_packages(schemathesis.__path__, "schemathesis.", onerror=lambda _: None):
    with contextlib.suppress(ImportError):  # integrations with tools not installed here
        importlib.import_module(_module.name)

TOKEN = "fuzz-token-7c1e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEED = 13
# Per operation and generation mode.
EXAMPLES = 100
REQUEST_TIMEOUT = 10.0
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _local(case: Any, receiver: Receiver) -> None:
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("url"), str):
        try:
            check_endpoint_url(body["url"])
        except ValueError:
            return  # refused by the API: sent as generated
        body["url"] = receiver.url()


def _described(failure: BaseException) -> str:
    """schemathesis's report, and what a group (Hypothesis's Flaky is one) holds."""
    text = f"{type(failure).__name__}: {failure}"
    if isinstance(failure, BaseExceptionGroup):
        text += "".join("\n  " + _described(inner).replace("\n", "\n  ") for inner in failure.exceptions)
    return text


def _strategy(operation: Any, mode: GenerationMode, known: dict[str, str]) -> st.SearchStrategy[Any]:
    generated: st.SearchStrategy[Any] = operation.as_strategy(generation_mode=mode)
    names = {p.name for p in operation.path_parameters}
    # A DELETE of the real endpoint would turn every later case into the 404 random ids get.
    fixed = {name: value for name, value in known.items() if name in names and operation.method != "delete"}
    if mode is GenerationMode.NEGATIVE or not fixed:
        return generated
    return st.one_of(generated, operation.as_strategy(generation_mode=mode, path_parameters=fixed))


def _fuzz(base_url: str, receiver: Receiver, known: dict[str, str]) -> tuple[list[str], int]:
    """Every operation in both modes; the first failure of each, and the number of requests made."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    requests = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes wrongly
            failures.append(f"invalid operation in /openapi.json: {result.err()}")
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @seed(SEED)
            @hypothesis_settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,  # no examples carried over from an earlier run
                phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported
                suppress_health_check=list(HealthCheck),
            )
            @given(case=_strategy(operation, mode, known))
            def run(case: Any) -> None:
                nonlocal requests
                _local(case, receiver)
                # Every case is the account's own, negative ones too: a 401 would stop it at the door.
                case.headers = {**(case.headers or {}), **AUTH}
                requests += 1
                case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=REQUEST_TIMEOUT)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label
                continue  # no parameter and no body: nothing invalid to send
            except (Exception, BaseExceptionGroup) as failure:  # schemathesis reports a FailureGroup
                failures.append(f"{operation.label} [{mode.value}]: {_described(failure)}")
    return failures, requests


async def test_fuzzing_finds_no_server_error_timeout_or_undocumented_answer(settings, worker, client, receiver):
    fuzzed = settings.model_copy(update={"api_tokens": {"fuzz": SecretStr(TOKEN)}})
    started = time.monotonic()
    async with (
        BackgroundServer(create_app(fuzzed), free_port()) as server,
        httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as http,
    ):
        created = await http.post("/v1/endpoints", json={"url": receiver.url(), "events": ["TRACKING_UPDATE"]})
        endpoint_id = created.json()["id"]
        await delivery_outcome(client, first_connection_id(endpoint_id))
        known = {"endpoint_id": endpoint_id, "delivery_id": first_connection_id(endpoint_id)}
        # schemathesis is synchronous: it runs in a thread while this loop serves the API and the worker.
        failures, requests = await asyncio.to_thread(_fuzz, server.url, receiver, known)

    assert not failures, "\n\n".join(failures)
    assert requests > 1000, requests  # it did fuzz
    print(f"schemathesis: {requests} requests in {time.monotonic() - started:.0f} s, no failure")
