"""Every refusal has one shape, the one /openapi.json documents for it (issue 13: 26 status codes
were undocumented and the 422 bodies did not match the document)."""

from __future__ import annotations

import json

from pydantic import SecretStr

from tests.contract import CONTRACT_TRACKING
from tests.integration.helpers import api_with, create_endpoint, post_event, tracking_event

SHAPE = {"detail", "errors"}


async def test_401_404_409_and_unreadable_bodies_answer_the_error_shape(api, settings, receiver):
    await create_endpoint(api, receiver.url())
    event = tracking_event()
    await post_event(api, event)

    missing = await api.get("/v1/endpoints/ep_missing")
    conflict = await api.post("/v1/events", json=event | {"order": event["order"] | {"carrier": "DHL"}})
    not_utf8 = await api.post("/v1/endpoints", content=b'{"url": "\xff"}', headers={"content-type": "application/json"})
    utf16 = await api.post(
        "/v1/endpoints", content='{"url": "x"}'.encode("utf-16"), headers={"content-type": "application/json"}
    )
    as_text = await api.post("/v1/events", content=b'{"order": {}}', headers={"content-type": "text/plain"})
    deep = b'{"event": "TRACKING_UPDATE", "order": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    too_deep = await api.post("/v1/events", content=deep, headers={"content-type": "application/json"})
    async with api_with(settings.model_copy(update={"api_tokens": {"shop": SecretStr("t")}})) as guarded:
        unauthorized = await guarded.get("/v1/endpoints")
        # Only a caller with a token gets the body searched for a key given twice (Python-slow).
        twice = await guarded.post(
            "/v1/endpoints", content=b'{"url": "x", "url": "y"}', headers={"content-type": "application/json"}
        )

    assert missing.status_code == 404 and set(missing.json()) == SHAPE and missing.json()["errors"] == []
    assert conflict.status_code == 409 and [p["field"] for p in conflict.json()["errors"]] == ["id"]
    for unreadable in (not_utf8, utf16):  # json.loads took UTF-16 (and 32), which RFC 8259 rules out
        assert unreadable.status_code == 422 and unreadable.json()["errors"] == [
            {"field": "body", "message": "is not valid JSON (in UTF-8)"}
        ]
    assert as_text.status_code == 422 and as_text.json()["errors"] == [
        {"field": "body", "message": "must be JSON, sent as Content-Type: application/json"}
    ]
    assert too_deep.status_code == 422 and too_deep.json()["errors"] == [
        {"field": "body", "message": "is nested too deeply to read"}
    ]
    assert unauthorized.status_code == 401 and unauthorized.json() == {
        "detail": "missing or wrong bearer token",
        "errors": [],
    }
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    assert twice.status_code == 401


async def test_every_refusal_in_the_document_is_the_error_shape(api):
    document = (await api.get("/openapi.json")).json()

    refusals = {
        (method.upper(), path, code): answer["content"]["application/json"]["schema"]["$ref"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for code, answer in operation["responses"].items()
        if not code.startswith("2")
    }

    assert refusals.pop(("GET", "/healthz", "503")) == "#/components/schemas/Health"
    assert set(refusals.values()) == {"#/components/schemas/ErrorBody"}
    assert {code for (_, _, code) in refusals} == {"401", "404", "409", "413", "422", "503"}
    assert "HTTPValidationError" not in str(document)


async def test_a_key_given_twice_is_refused_by_name_and_a_huge_number_by_its_field(api, receiver):
    """An outside probe: the last of two `url` keys won (a proxy that reads the first sees another
    request), and a number of 5,001 digits was "not valid JSON", naming no field."""
    as_json = {"content-type": "application/json"}
    url = receiver.url()
    twice = {
        "url": f'{{"url": "{url}", "url": "{url}x", "events": ["TRACKING_UPDATE"]}}',
        "retry.enabled": f'{{"url": "{url}", "events": ["TRACKING_UPDATE"], '
        '"retry": {"enabled": true, "max_retries": 2, "enabled": false}}',
    }
    refused = {field: await api.post("/v1/endpoints", content=body, headers=as_json) for field, body in twice.items()}
    # A second probe: an unknown key given twice was named back, and a lone surrogate made a 500.
    unknown = [
        ("body", f'{{"url": "{url}", "events": ["TRACKING_UPDATE"], "s3cretK3y": 1, "s3cretK3y": 2}}'),
        (
            "auth",
            f'{{"url": "{url}", "events": ["TRACKING_UPDATE"], '
            '"auth": {"username": "a", "password": "p", "hunter2X": 1, "hunter2X": 2}}',
        ),
        ("body", f'{{"url": "{url}", "events": ["TRACKING_UPDATE"], "\\ud800": 1, "\\ud800": 2}}'),
    ]
    unnamed = [(field, await api.post("/v1/endpoints", content=body, headers=as_json)) for field, body in unknown]
    event = json.dumps(tracking_event()).replace(f'"code": {CONTRACT_TRACKING["code"]}', '"code": 1' + "0" * 5000)
    huge = await api.post("/v1/events", content=event, headers=as_json)

    for field, answer in refused.items():
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"] == [{"field": field, "message": "is given twice: send each key once"}]
    not_named = "has a key given twice (an unknown name is not repeated: it could be a secret)"
    for field, answer in unnamed:
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"] == [{"field": field, "message": not_named}]
        assert "s3cretK3y" not in answer.text and "hunter2X" not in answer.text
    stored = {endpoint["url"] for endpoint in (await api.get("/v1/endpoints")).json()}
    assert not stored & {url, f"{url}x"}  # nothing created
    assert huge.status_code == 422 and huge.json()["errors"] == [
        {"field": "tracking.code", "message": "must be 9999 or less"}
    ]
