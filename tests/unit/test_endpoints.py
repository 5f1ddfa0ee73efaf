"""What a merchant may register as an endpoint, and how it is shown back (CONTRACT §1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from domain.endpoints import Endpoint, EndpointPatch, EndpointPatchRequest, EndpointRequest, EndpointSpec, RetrySettings
from domain.events import EventType
from domain.problems import field_errors  # what api/errors.py answers with
from domain.signing import SigningSecret

NOW = datetime(2024, 1, 1, tzinfo=UTC)

CONTRACT_SPEC: dict[str, Any] = {
    "url": "https://shop.example.com/hooks/shippy",
    "events": ["ORDER_SHIPPED", "ORDER_ERROR", "TRACKING_UPDATE"],
    "auth": {"username": "shop", "password": "s3cret-pw"},
    "retry": {"enabled": True, "max_retries": 3},
    "custom_header": {"key": "X-Shop-Token", "value": "abc123-token"},
    "description": "main shop",
}
MINIMAL: dict[str, Any] = {"url": "https://shop.example.com/hooks", "events": ["ORDER_SHIPPED"]}


def problems(exc: pytest.ExceptionInfo[ValidationError]) -> list[dict[str, str]]:
    return field_errors(exc.value.errors())


def rejected(data: dict[str, Any], model: type[EndpointSpec | EndpointPatch] = EndpointSpec) -> list[dict[str, str]]:
    """The API's problems for `data`; fails the test if it was accepted."""
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    return problems(exc)


def fields(found: list[dict[str, str]]) -> set[str]:
    return {p["field"] for p in found}


def test_the_contract_example_is_accepted_as_given() -> None:
    spec = EndpointSpec.model_validate(CONTRACT_SPEC)
    assert spec.url == CONTRACT_SPEC["url"]
    assert spec.events == [EventType.ORDER_SHIPPED, EventType.ORDER_ERROR, EventType.TRACKING_UPDATE]
    assert spec.auth is not None and (spec.auth.username, spec.auth.password) == ("shop", "s3cret-pw")
    assert spec.retry == RetrySettings(enabled=True, max_retries=3)
    assert spec.custom_header is not None and spec.custom_header.value == "abc123-token"


def test_omitted_options_default_to_no_retry_and_no_auth() -> None:
    """`retry` defaults to {enabled: false, max_retries: 0}; auth and custom header are optional."""
    spec = EndpointSpec.model_validate(MINIMAL)
    assert (spec.retry.enabled, spec.retry.max_retries) == (False, 0)
    assert spec.auth is None and spec.custom_header is None


@pytest.mark.parametrize(
    "url",
    [
        "/hooks/shippy",
        "shop.example.com/hooks",
        "//shop.example.com/hooks",
        "ftp://shop.example.com/hooks",
        "javascript:alert(1)",
        "https://",
        "https:///path",
        "https://:443/x",
        "https://shop.example.com/hooks with space",
        "https://shop.example.com/\nhooks",
        "https://user:pass@shop.example.com/hooks",
        "https://user@shop.example.com/hooks",
        "https://shop.example.com:99999/hooks",
        "https://[::1/hooks",
        "https://shop.example.com/" + "a" * 2030,
        "",
    ],
)
def test_a_url_that_is_not_an_absolute_http_url_is_rejected_naming_url(url: str) -> None:
    """Only absolute http(s) URLs with a host, no credentials, at most 2048 characters."""
    assert fields(rejected(MINIMAL | {"url": url})) == {"url"}


@pytest.mark.parametrize(
    "url",
    [
        "http://shop.example.com/hooks",
        "https://shop.example.com:8443/hooks?shop=1#frag",
        "HTTPS://Shop.Example.com/hooks",
        "http://[2001:db8::1]:8080/hooks",
        "https://shop.example.com/" + "a" * (2048 - len("https://shop.example.com/")),
    ],
)
def test_absolute_http_urls_are_accepted_up_to_2048_characters(url: str) -> None:
    assert EndpointSpec.model_validate(MINIMAL | {"url": url}).url == url


# Hosts no resolver takes: each was a 500 (UnicodeError from the resolver) before the URL rule named them.
INVALID_HOSTS = {
    "a label of 64 characters": "https://" + "a" * 64 + ".example.com/hooks",
    "an empty label": "https://a..b/hooks",
    "a leading empty label": "https://.shop.example.com/hooks",
    "a name of 254 characters": "https://" + ("a" * 62 + ".") * 4 + "a" * 2 + "/hooks",
    "a lone surrogate": "https://x\ud800y.example.com/hooks",
    "an invalid internationalized name": "https://xn--a.example\u2167.com/",
    "a percent sign": "https://shop%2e.example.com/hooks",
    "brackets around IPvFuture": "https://[v1.x]/hooks",
    "an IPv4 address out of range": "http://999.1.1.1/hooks",
    "an IPv4 address with leading zeros": "http://0177.0.0.1/hooks",
    # Resolvers and browsers read a name ending in a number as an IPv4 address (127.0.0.1 all).
    "a shortened IPv4 address": "http://127.1:8080/hooks",
    "an IPv4 address as one number": "http://2130706433/hooks",
    "an IPv4 address in hexadecimal": "http://0x7f000001/hooks",
    "a name whose last label is hexadecimal": "http://0x7f.1/hooks",
    "a label ending in a hyphen": "http://bad-.example.com/hooks",
    "a label beginning with a hyphen": "http://-bad.example.com/hooks",
    # RFC 6874's zone id: httpx hands `fe80::1%25eth0` to the resolver undecoded, which never finds it.
    "an IPv6 address with a zone id": "http://[fe80::1%25eth0]/hooks",
    # urllib drops what follows the bracket; httpx refuses the URL at every attempt (a second probe).
    "a zone id after the bracket": "http://[fe80::1]%25eth0/hooks",
    "text after the bracket": "http://[2001:db8::1]junk/hooks",
    "text between the bracket and the port": "http://[2001:db8::1]x:8080/hooks",
}


@pytest.mark.parametrize("url", INVALID_HOSTS.values(), ids=INVALID_HOSTS.keys())
@pytest.mark.parametrize("model", [EndpointRequest, EndpointPatchRequest])
def test_a_host_that_is_neither_an_ip_literal_nor_a_dns_name_is_rejected_naming_url(
    url: str, model: type[EndpointSpec | EndpointPatch]
) -> None:
    """CONTRACT §1: labels of 1-63 characters, at most 253 in all; the refusal says which rule, not the host."""
    data = MINIMAL | {"url": url} if model is EndpointRequest else {"url": url}
    [problem] = rejected(data, model)
    assert problem["field"] == "url"
    assert "host" in problem["message"] and "example" not in problem["message"]


@pytest.mark.parametrize(
    "url",
    [
        "https://" + "a" * 63 + ".example.com/hooks",
        "https://" + ("a" * 62 + ".") * 4 + "a/hooks",  # 253 characters
        "https://shop.example.com./hooks",  # the root's dot
        "https://b\u00fccher.example/hooks",
        "https://_acme.shop-1.example.com/hooks",
        "http://a-b.c0m:1/hooks",  # hyphens inside a label, a last label with a digit, port 1
    ],
)
def test_hosts_at_the_limits_are_accepted(url: str) -> None:
    assert EndpointRequest.model_validate(MINIMAL | {"url": url}).url == url


@pytest.mark.parametrize("url", ["http://127.0.0.1:0/hooks", "http://127.0.0.1:99999/hooks", "http://x.com:abc/"])
@pytest.mark.parametrize("model", [EndpointRequest, EndpointPatchRequest])
def test_a_port_is_one_to_65535_and_the_refusal_says_so(model: type[EndpointSpec | EndpointPatch], url: str) -> None:
    """Port 0 too: no connection can be made to it (a malformed port was told "from 0")."""
    [problem] = rejected(MINIMAL | {"url": url} if model is EndpointRequest else {"url": url}, model)
    assert problem == {"field": "url", "message": "must have a port that is a number from 1 to 65535"}


def test_a_stored_endpoint_keeps_the_url_rules_it_was_accepted_under() -> None:
    """A registry holding a URL from before the host rule still loads (and replays): only new input is refused."""
    stored = {"id": "ep_1", "created_at": NOW, "updated_at": NOW} | MINIMAL | {"url": INVALID_HOSTS["an empty label"]}
    assert Endpoint.model_validate(stored).url == INVALID_HOSTS["an empty label"]
    assert EndpointPatch.model_validate({"description": "x"}).apply_to(Endpoint.model_validate(stored).spec)


@pytest.mark.parametrize("events", [[], ["ORDER_LOST"], ["ORDER_SHIPPED", "ORDER_SHIPPED"], ["order_shipped"], None])
def test_events_must_be_a_non_empty_list_of_distinct_known_events(events: Any) -> None:
    found = rejected(MINIMAL | {"events": events})
    assert {f.split(".")[0] for f in fields(found)} == {"events"}


def test_a_long_events_list_is_refused_by_its_length_not_item_by_item() -> None:
    """Each type at most once, so a list longer than the types is refused whole: one problem, not 100,000."""
    found = rejected(MINIMAL | {"events": ["ORDER_LOST"] * 100_000})
    assert fields(found) == {"events"} and len(found) == 1


@pytest.mark.parametrize("max_retries", [0, 1, 10])
def test_up_to_ten_retries_are_accepted(max_retries: int) -> None:
    spec = EndpointSpec.model_validate(MINIMAL | {"retry": {"enabled": True, "max_retries": max_retries}})
    assert spec.retry.max_retries == max_retries


def test_eleven_retries_are_rejected_naming_the_field_and_the_limit() -> None:
    """The seed: "up to 10 times"; 11 is refused and the message says why."""
    found = rejected(MINIMAL | {"retry": {"enabled": True, "max_retries": 11}})
    assert fields(found) == {"retry.max_retries"}
    assert "10" in found[0]["message"]


@pytest.mark.parametrize("max_retries", [-1, "3", 3.5, True, None])
def test_max_retries_must_be_a_plain_integer_from_zero(max_retries: Any) -> None:
    """No negative counts and no coercion of strings, floats or booleans."""
    found = rejected(MINIMAL | {"retry": {"enabled": True, "max_retries": max_retries}})
    assert fields(found) == {"retry.max_retries"}


@pytest.mark.parametrize(
    ("enabled", "max_retries", "attempts"), [(False, 0, 1), (False, 5, 1), (False, 10, 1), (True, 0, 1), (True, 3, 4)]
)
def test_max_attempts_counts_retries_only_when_enabled(enabled: bool, max_retries: int, attempts: int) -> None:
    """At most `max_retries + 1` POSTs, and only one when retry is off."""
    assert RetrySettings(enabled=enabled, max_retries=max_retries).max_attempts == attempts


@pytest.mark.parametrize("key", ["X-Shop-Token", "x_shop", "Token123", "Authorization"])
def test_a_valid_custom_header_is_accepted_without_auth(key: str) -> None:
    spec = EndpointSpec.model_validate(MINIMAL | {"custom_header": {"key": key, "value": "v a l\tue"}})
    assert spec.custom_header is not None and spec.custom_header.key == key


@pytest.mark.parametrize("key", ["Bad Header", "X:Y", "", "X-Tökén", "X-Shop\r\nX-Evil"])
def test_a_custom_header_key_that_is_not_a_header_name_is_rejected(key: str) -> None:
    found = rejected(MINIMAL | {"custom_header": {"key": key, "value": "v"}})
    assert fields(found) == {"custom_header.key"}


@pytest.mark.parametrize("value", ["abc\r\nX-Evil: 1", "abc\n", "abc\x00"])
def test_a_custom_header_value_with_line_breaks_or_controls_is_rejected(value: str) -> None:
    """A value must not be able to inject another header."""
    found = rejected(MINIMAL | {"custom_header": {"key": "X-Shop-Token", "value": value}})
    assert fields(found) == {"custom_header.value"}


@pytest.mark.parametrize(
    "key",
    [
        "Host",
        "content-type",
        "Content-Type",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "webhook-id",
        "Webhook-Id",
        "webhook-signature",
        "WEBHOOK-SIGNATURE",
    ],
)
def test_a_header_the_service_sets_cannot_be_a_custom_header(key: str) -> None:
    """The service's own headers cannot be replaced, whatever their case; the reason says so
    without repeating the key (a refusal never echoes what it refused)."""
    found = rejected(MINIMAL | {"custom_header": {"key": key, "value": "v"}})
    assert found == [
        {"field": "custom_header.key", "message": "is a header the service sets itself and cannot be replaced"}
    ]


def test_authorization_is_reserved_only_when_auth_is_set() -> None:
    """With Basic auth the service sets Authorization itself; without it the merchant may."""
    header = {"custom_header": {"key": "authorization", "value": "Bearer t"}}
    found = rejected(MINIMAL | {"auth": {"username": "u", "password": "p"}} | header)
    assert fields(found) == {"custom_header.key"}
    assert "authorization" in found[0]["message"]
    assert EndpointSpec.model_validate(MINIMAL | header).custom_header is not None


@pytest.mark.parametrize(
    ("auth", "field"),
    [
        ({"username": "sh:op", "password": "pw"}, "auth.username"),
        ({"username": "shop", "password": ""}, "auth.password"),
        ({"username": "", "password": "pw"}, "auth.username"),
        ({"username": "shop"}, "auth.password"),
        ({"username": "shop", "password": "pw\nX-Evil: 1"}, "auth.password"),
    ],
)
def test_bad_credentials_are_rejected_naming_the_field(auth: dict[str, str], field: str) -> None:
    """Basic auth needs a username without ":" and a non-empty password."""
    assert fields(rejected(MINIMAL | {"auth": auth})) == {field}


def test_a_password_may_contain_a_colon() -> None:
    """RFC 7617: only the user-id is split on the first colon."""
    spec = EndpointSpec.model_validate(MINIMAL | {"auth": {"username": "shop", "password": "a:b"}})
    assert spec.auth is not None and spec.auth.password == "a:b"


def test_refusals_never_echo_a_secret() -> None:
    """A rejected password or header value is not repeated in the answer."""
    data = MINIMAL | {
        "auth": {"username": "shop", "password": "hunter2-secret\x01"},
        "custom_header": {"key": "X-Shop-Token", "value": "token-secret\r\n"},
    }
    found = rejected(data)
    assert fields(found) == {"auth.password", "custom_header.value"}
    assert "hunter2" not in repr(found) and "token-secret" not in repr(found)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (MINIMAL | {"url": "https://shop.example.com:PW-7f3a9c-secret/hooks"}, "url"),  # a password in the port
        (MINIMAL | {"PW-7f3a9c-secret": "x"}, "body"),  # a secret pasted as a key
        (MINIMAL | {"auth": {"username": "shop", "password": "p", "PW-7f3a9c-secret": "x"}}, "auth"),
        (MINIMAL | {"description": ["PW-7f3a9c-secret"]}, "description"),
    ],
)
def test_no_refusal_repeats_the_rejected_value(data: dict[str, Any], field: str) -> None:
    """Issue 13: a bad port and an unknown field's name were echoed."""
    found = rejected(data, EndpointRequest)
    assert fields(found) == {field}
    assert "PW-7f3a9c" not in repr(found)


# --- PATCH ---


def test_an_empty_patch_is_valid_and_changes_nothing() -> None:
    spec = EndpointSpec.model_validate(CONTRACT_SPEC)
    assert EndpointPatch.model_validate({}).apply_to(spec) == spec


@pytest.mark.parametrize("field", ["url", "events", "retry", "description"])
def test_a_required_field_cannot_be_patched_to_null(field: str) -> None:
    assert fields(rejected({field: None}, EndpointPatch)) == {field}


def test_a_patch_is_validated_like_a_spec() -> None:
    assert fields(rejected({"url": "ftp://x.example"}, EndpointPatch)) == {"url"}
    assert fields(rejected({"retry": {"enabled": True, "max_retries": 11}}, EndpointPatch)) == {"retry.max_retries"}
    assert {f.split(".")[0] for f in fields(rejected({"events": ["ORDER_ERROR"] * 2}, EndpointPatch))} == {"events"}


def test_patching_the_description_keeps_everything_else_including_secrets() -> None:
    spec = EndpointSpec.model_validate(CONTRACT_SPEC)
    patched = EndpointPatch.model_validate({"description": "new"}).apply_to(spec)
    assert patched.description == "new"
    assert patched.model_dump(exclude={"description"}) == spec.model_dump(exclude={"description"})
    assert patched.auth is not None and patched.auth.password == "s3cret-pw"


def test_null_clears_auth_and_the_custom_header() -> None:
    spec = EndpointSpec.model_validate(CONTRACT_SPEC)
    assert EndpointPatch.model_validate({"auth": None}).apply_to(spec).auth is None
    cleared = EndpointPatch.model_validate({"custom_header": None}).apply_to(spec)
    assert cleared.custom_header is None and cleared.auth == spec.auth


def test_a_patch_that_breaks_the_whole_is_rejected() -> None:
    """Adding auth to an endpoint whose custom header is Authorization: the merged spec is re-validated."""
    spec = EndpointSpec.model_validate(MINIMAL | {"custom_header": {"key": "Authorization", "value": "Bearer t"}})
    patch = EndpointPatch.model_validate({"auth": {"username": "u", "password": "p"}})
    with pytest.raises(ValidationError) as exc:
        patch.apply_to(spec)
    assert fields(problems(exc)) == {"custom_header.key"}


# --- how an endpoint is shown back ---


def test_the_masked_view_hides_password_and_header_value() -> None:
    """No route returns the password or the custom header's value in clear."""
    endpoint = Endpoint.model_validate(CONTRACT_SPEC | {"id": "ep_1", "created_at": NOW, "updated_at": NOW})
    view = endpoint.masked()
    assert view.auth is not None and (view.auth.username, view.auth.password) == ("shop", "********")
    assert view.custom_header is not None and (view.custom_header.key, view.custom_header.value) == (
        "X-Shop-Token",
        "********",
    )
    assert (view.id, view.url, view.retry, view.description) == (
        "ep_1",
        CONTRACT_SPEC["url"],
        endpoint.retry,
        "main shop",
    )
    shown = view.model_dump_json()
    assert "s3cret-pw" not in shown and "abc123-token" not in shown
    assert '"created_at"' in shown


def test_the_masked_view_of_an_endpoint_without_secrets_shows_nulls() -> None:
    endpoint = Endpoint.model_validate(MINIMAL | {"id": "ep_2", "created_at": NOW, "updated_at": NOW})
    view = endpoint.masked()
    assert view.auth is None and view.custom_header is None


def test_a_previous_secret_is_shown_only_while_its_grace_lasts() -> None:
    """An outside probe: after the grace ended, GET still showed `previous_secret_expires_at` in
    the past, though the docs say it shows a key "still signing through its grace period"."""
    ends = NOW + timedelta(hours=1)
    secrets = [
        SigningSecret(secret="whsec_old", created_at=NOW, expires_at=ends),
        SigningSecret(secret="whsec_new", created_at=NOW + timedelta(seconds=1)),
    ]
    endpoint = Endpoint.model_validate(MINIMAL | {"id": "ep_1", "created_at": NOW, "updated_at": NOW})
    view = endpoint.model_copy(update={"signing_secrets": secrets}).masked()

    during, after = view.as_of(ends - timedelta(seconds=1)), view.as_of(ends)

    assert during.signing is not None and during.signing.previous_secret_expires_at == ends
    assert after.signing is not None and after.signing.previous_secret_expires_at is None
    assert after.signing.secret_created_at == NOW + timedelta(seconds=1)  # the current one is still shown


@pytest.mark.parametrize(
    "change",
    [
        {"retry": {"enabled": "off", "max_retries": 2}},
        {"retry": {"enabled": 1, "max_retries": 2}},
        {"disabled": "false"},
        {"rate_limit": {"per_second": "5"}},
    ],
)
def test_flags_and_rates_are_taken_as_json_types_not_as_text(change: dict[str, Any]) -> None:
    """`"off"` read as false would turn retries off without a word: refused, naming the field."""
    [problem] = rejected(MINIMAL | change, EndpointRequest)
    field = next(iter(change))
    assert problem["field"].startswith(field)


@pytest.mark.parametrize(
    "description",
    ["a NUL\x00cuts text short", "an escape \x1b[2J clears a terminal", "shop \u202eanil\u202c", "x\u2067y"],
)
def test_a_description_that_would_not_show_as_written_is_refused(description: str) -> None:
    """A control character or a direction override (an outside probe stored both)."""
    assert fields(rejected(MINIMAL | {"description": description}, EndpointRequest)) == {"description"}
    assert fields(rejected({"description": description}, EndpointPatchRequest)) == {"description"}


def test_a_description_keeps_its_lines_tabs_and_any_script() -> None:
    text = "Main shop\r\n\tinvoices: 請求書, فاتورة\nrefunds"
    assert EndpointRequest.model_validate(MINIMAL | {"description": text}).description == text
    # What was stored before the rule still loads: the registry's state and its history replay.
    assert EndpointSpec.model_validate(MINIMAL | {"description": "old\x00"}).description == "old\x00"
