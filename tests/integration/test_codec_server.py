"""Decoding is an operator's right: the codec server has its own listener and credential, never a merchant's."""

from __future__ import annotations

from pydantic import SecretStr

from domain.ids import registry_workflow_id
from tests.integration.helpers import api_with, codec_decode, codec_with, decoded_text, raw_query

PASSWORD = "pw-Codec-7731"
PLAIN = {"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJhIjogMX0="}  # json/plain, {"a": 1}


async def test_another_merchants_token_decrypts_nothing(settings, worker, receiver, temporal_address):
    """The probe's finding: shop-b's token read shop-a's password through the API's /codec."""
    tokens = {"shop-a": SecretStr("token-a"), "shop-b": SecretStr("token-b")}
    guarded = settings.model_copy(update={"api_tokens": tokens, "operator_token": SecretStr("token-operator")})
    a, b = {"Authorization": "Bearer token-a"}, {"Authorization": "Bearer token-b"}
    async with api_with(guarded) as api, codec_with(guarded) as codec:
        body = {"url": receiver.url(), "events": ["TRACKING_UPDATE"], "auth": {"username": "a", "password": PASSWORD}}
        created = await api.post("/v1/endpoints", json=body, headers=a)
        assert created.status_code == 201, created.text
        # What an operator's Web UI shows: the registry's answer, encrypted by the worker.
        answer = await raw_query(temporal_address, registry_workflow_id("shop-a"), "endpoints")

        on_the_api = [await codec_decode(api, answer, h) for h in (b, a)]
        merchants_on_the_codec = [await codec_decode(codec, answer, h) for h in (b, a, {})]
        operator = await codec_decode(codec, answer, {"Authorization": "Bearer token-operator"})
        await api.delete(f"/v1/endpoints/{created.json()['id']}", headers=a)

    assert [r.status_code for r in on_the_api] == [404, 404]  # the merchants' API has no codec at all
    assert [r.status_code for r in merchants_on_the_codec] == [401, 401, 401]
    assert all(r.json()["errors"] == [] and r.json()["detail"] for r in merchants_on_the_codec)
    assert created.json()["id"] in decoded_text(operator)  # the operator reads the registry


async def test_without_an_operator_token_the_codec_serves_the_web_ui_on_loopback_only(settings):
    ui_origin = "http://localhost:8233"
    async with codec_with(settings.model_copy(update={"temporal_ui_url": ui_origin})) as codec:
        encoded = await codec.post("/codec/encode", json={"payloads": [PLAIN]})
        # The Web UI sends no credential: only Content-Type and X-Namespace, from its origin.
        decoded = await codec.post("/codec/decode", json=encoded.json(), headers={"Origin": ui_origin})
        preflights = {
            origin: await codec.options(
                "/codec/decode",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-namespace",
                },
            )
            for origin in ("http://localhost:8233", "http://127.0.0.1:8233", "http://evil.example")
        }
        # A page whose name was rebound to 127.0.0.1 (DNS rebinding) names its own host.
        rebound = await codec.post("/codec/decode", json=encoded.json(), headers={"Host": "evil.example:8081"})
        malformed = await codec.post("/codec/decode", content=b"{nope")
        not_utf8 = await codec.post("/codec/decode", content=b"\xff\xfe{")  # was a 500
        # A field the parser names in its own message (with its value, for some mistakes).
        echoing = await codec.post("/codec/decode", json={"PW-7f3a9c-secret": "PW-7f3a9c-secret"})

    assert encoded.status_code == 200 and encoded.json()["payloads"][0]["data"] != PLAIN["data"]
    assert decoded.json() == {"payloads": [PLAIN]}
    assert decoded.headers["access-control-allow-origin"] == ui_origin
    for origin in ("http://localhost:8233", "http://127.0.0.1:8233"):
        assert preflights[origin].status_code == 200, origin
        assert preflights[origin].headers["access-control-allow-origin"] == origin
        assert "x-namespace" in preflights[origin].headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in preflights["http://evil.example"].headers
    assert rebound.status_code == 400
    assert malformed.status_code == not_utf8.status_code == 422
    # Refusals in the merchant API's shape, on the field at fault.
    assert [e["field"] for e in malformed.json()["errors"]] == ["payloads"]
    assert echoing.status_code == 422 and "PW-7f3a9c" not in echoing.text


async def test_the_apis_metrics_are_read_with_the_metrics_token_only(settings):
    """/metrics counts every account's requests and events together: the platform's volume. It
    was served to anyone who reached the API's port, token or not."""
    merchants = {"shop-a": SecretStr("token-a")}
    a, reader = {"Authorization": "Bearer token-a"}, {"Authorization": "Bearer token-metrics"}
    guarded = settings.model_copy(
        update={"api_tokens": merchants, "metrics_token": SecretStr("token-metrics"), "operator_token": None}
    )
    async with api_with(guarded) as api:
        refused = [await api.get("/metrics", headers=h) for h in ({}, a)]
        served = await api.get("/metrics", headers=reader)
    no_metrics_token = settings.model_copy(update={"api_tokens": merchants})
    async with api_with(no_metrics_token) as api:
        unset = await api.get("/metrics", headers=a)
    async with api_with(settings) as api:  # no token at all: make run, on loopback
        local = await api.get("/metrics")

    assert [(r.status_code, r.json()["detail"]) for r in refused] == [(401, "missing or wrong metrics token")] * 2
    assert served.status_code == 200 and "webhooks_api_requests_total" in served.text
    assert (unset.status_code, unset.json()) == (
        403,
        {"detail": "metrics are read with WEBHOOKS_METRICS_TOKEN, which is not set", "errors": []},
    )
    assert local.status_code == 200 and "webhooks_events_accepted_total" in local.text
