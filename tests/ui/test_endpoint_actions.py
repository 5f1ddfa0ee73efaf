"""The webhook list's health, Test with a chosen event, Recover failed since…, and Re-enable & recover
(issue 17), in a browser against the real API, worker and receivers."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Page, expect
from temporalio.client import Client

from domain.ids import first_connection_id
from tests.integration.helpers import create_endpoint, delivery_outcome, list_ids, post_event, tracking_event
from tests.receiver import OK, Receiver, Reply, error
from tests.ui.conftest import TIME_ZONE
from tests.waiting import eventually


async def endpoint_state(api: httpx.AsyncClient, endpoint_id: str) -> dict[str, object]:
    found: dict[str, object] = (await api.get(f"/v1/endpoints/{endpoint_id}")).json()
    return found


async def test_test_sends_the_event_picked(
    page: Page, dashboard: str, api: httpx.AsyncClient, receiver: Receiver, artifacts: Path
) -> None:
    url = receiver.url()
    await create_endpoint(api, url)
    await page.goto(f"{dashboard}/ui/")
    await page.get_by_role("button", name=f"Test {url}").click()
    dialog = page.get_by_role("dialog", name="Test webhook")
    await dialog.get_by_label("Event").select_option("ORDER_ERROR")
    await dialog.get_by_role("button", name="Send test").click()
    await expect(dialog.get_by_text("Test passed")).to_be_visible()
    request = dialog.locator("section", has=page.get_by_role("heading", name="Request"))
    await expect(request.locator("pre")).to_contain_text('"Event": "ORDER_ERROR"')
    await expect(request.locator("pre")).to_contain_text('"Error": "Carrier rejected the shipment')
    await page.screenshot(path=artifacts / "test-dialog-order-error.png")
    sent = [r for r in receiver.requests(url) if b'"Event":"ORDER_ERROR"' in r.body.replace(b" ", b"")]
    assert len(sent) == 1


async def test_the_list_shows_health_signing_rate_limit_and_ordering(
    page: Page, dashboard: str, api: httpx.AsyncClient, client: Client, receiver: Receiver, artifacts: Path
) -> None:
    healthy, failing = receiver.url(), receiver.url(OK, error(500))
    signed = await create_endpoint(api, healthy, rate_limit={"per_second": 2}, ordering="fifo")
    await api.post(f"/v1/endpoints/{signed['id']}/secret")
    broken = await create_endpoint(api, failing, events=["TRACKING_UPDATE"])
    await delivery_outcome(client, first_connection_id(broken["id"]))
    await post_event(api, tracking_event())
    await eventually(lambda: endpoint_state(api, broken["id"]), lambda e: e["failed_deliveries_in_a_row"] == 1)

    await page.goto(f"{dashboard}/ui/")
    good_row = page.locator("tbody tr", has_text=healthy)
    await expect(good_row.locator('td[data-label="Health"]')).to_have_text("healthy")
    await expect(good_row.locator('td[data-label="Signing"]')).to_have_text("HMAC (v1)")
    await expect(good_row.locator('td[data-label="Rate limit"]')).to_have_text("≤ 2/s")
    await expect(good_row.locator('td[data-label="Ordering"]')).to_have_text("FIFO per order")
    bad_row = page.locator("tbody tr", has_text=failing)
    await expect(bad_row.locator('td[data-label="Health"] .badge')).to_have_text("failing")
    await expect(bad_row.locator('td[data-label="Health"]')).to_contain_text("The last delivery failed")
    await expect(bad_row.locator('td[data-label="Signing"]')).to_have_text("not signed")
    await expect(bad_row.locator('td[data-label="Rate limit"]')).to_have_text("no limit")
    await expect(bad_row.locator('td[data-label="Ordering"]')).to_have_text("any order")
    await expect(bad_row.get_by_role("button", name=re.compile("^Re-enable"))).to_have_count(0)
    await page.screenshot(path=artifacts / "endpoints-health.png", full_page=True)


async def test_the_list_shows_posts_failing_while_the_first_failed_delivery_still_retries(
    page: Page, dashboard: str, api: httpx.AsyncClient, client: Client, receiver: Receiver
) -> None:
    held = asyncio.Event()  # from its third POST on, each waits for this, or times out
    url = receiver.url(OK, error(500), error(500), Reply(status=500, answer_when=held))
    retry = {"enabled": True, "max_retries": 10}
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"], retry=retry)
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    accepted = await post_event(api, tracking_event())
    [retrying] = [d["id"] for d in accepted["deliveries"] if d["endpoint_id"] == endpoint["id"]]
    await eventually(
        lambda: endpoint_state(api, endpoint["id"]),
        lambda e: e["posts_failing_since"] is not None and e["failed_deliveries_in_a_row"] == 0,
    )

    await page.goto(f"{dashboard}/ui/")
    row = page.locator("tbody tr", has_text=url)
    await expect(row.locator('td[data-label="Health"] .badge')).to_have_text("failing")
    await expect(row.locator('td[data-label="Health"]')).to_contain_text("POSTs failing since")
    held.set()
    assert (await delivery_outcome(client, retrying)).result == "failed"


async def test_recover_failed_since_sends_the_failures_again(
    page: Page, dashboard: str, api: httpx.AsyncClient, client: Client, receiver: Receiver, artifacts: Path
) -> None:
    url = receiver.url(OK, error(500), OK)
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    [failed] = [d["id"] for d in (await post_event(api, tracking_event()))["deliveries"]]
    assert (await delivery_outcome(client, failed)).result == "failed"
    # Recovery finds failures through the log's search, which lags a moment behind.
    await eventually(lambda: list_ids(api, endpoint_id=endpoint["id"], result="failed"), lambda ids: failed in ids)

    await page.goto(f"{dashboard}/ui/")
    await page.get_by_role("button", name=f"Recover failed deliveries of {url}").click()
    dialog = page.get_by_role("dialog", name="Recover failed deliveries")
    since = dialog.get_by_label("Failed since")
    await expect(since).to_be_focused()
    await expect(dialog).to_contain_text(f"In your time zone ({TIME_ZONE})")

    # A moment in the future: the API's reason, next to the field; nothing is sent.
    await since.fill("2999-01-01T00:00")
    await dialog.get_by_role("button", name="Recover").click()
    await expect(dialog.locator("#recover-since-error")).to_have_text("must not be in the future")
    await expect(since).to_have_attribute("aria-invalid", "true")
    await expect(since).to_have_accessible_description(re.compile("must not be in the future"))
    await page.screenshot(path=artifacts / "recover-since-error.png")

    await since.fill(datetime.now(ZoneInfo(TIME_ZONE)).strftime("%Y-%m-%dT00:00"))
    await dialog.get_by_role("button", name="Recover").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("status")).to_contain_text("1 failed or skipped delivery since")
    await expect(page.get_by_role("status")).to_contain_text("it is being sent again")
    await receiver.wait_for(url, 3)  # first connection, the failure, its recovery
    recovered = await delivery_outcome(client, f"{failed}/recovered")
    assert recovered.result == "success"
    await page.screenshot(path=artifacts / "recovered.png", full_page=True)


async def test_a_disabled_endpoint_shows_its_reason_in_local_time_and_is_re_enabled_and_recovered(
    page: Page, dashboard: str, api: httpx.AsyncClient, client: Client, receiver: Receiver, artifacts: Path
) -> None:
    url = receiver.url(OK, error(410), OK)
    endpoint = await create_endpoint(api, url, events=["TRACKING_UPDATE"])
    await delivery_outcome(client, first_connection_id(endpoint["id"]))
    # An event id may hold an instant: the reason quotes it, and it is not read as the reason's time.
    await post_event(api, tracking_event(f"evt-2001-01-01T00:00:00Z-{uuid.uuid4().hex[:6]}"))
    disabled = await eventually(lambda: endpoint_state(api, endpoint["id"]), lambda e: e["disabled"] is True)
    [skipped] = [d["id"] for d in (await post_event(api, tracking_event()))["deliveries"]]
    assert (await delivery_outcome(client, skipped)).result == "skipped"
    await eventually(lambda: list_ids(api, endpoint_id=endpoint["id"], result="skipped"), lambda ids: skipped in ids)

    await page.goto(f"{dashboard}/ui/")
    row = page.locator("tbody tr", has_text=url)
    health = row.locator('td[data-label="Health"]')
    await expect(health).to_contain_text("disabled")
    await expect(health).to_contain_text("The receiver answered 410 Gone to")
    # The reason's UTC instant, shown in the browser's zone: the text holds no raw timestamp.
    [instant] = re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", str(disabled["disabled_reason"]))
    shown = health.locator("time")
    await expect(shown).to_have_attribute("datetime", instant)
    local = datetime.fromisoformat(instant).astimezone(ZoneInfo(TIME_ZONE))
    await expect(shown).to_contain_text(local.strftime("%I:%M:%S").lstrip("0"))
    await expect(health).not_to_contain_text("+00:00")
    await expect(health).to_contain_text("/evt-2001-01-01T00:00:00Z-")
    await page.screenshot(path=artifacts / "endpoints-disabled.png", full_page=True)
    # Only re-enabling recovers: a disabled endpoint's re-runs would be skipped.
    await expect(row.get_by_role("button", name=f"Recover failed deliveries of {url}")).to_have_count(0)

    await row.get_by_role("button", name=f"Re-enable & recover {url}").click()
    dialog = page.get_by_role("dialog", name="Re-enable & recover")
    # It starts at the moment the reason names.
    await expect(dialog.get_by_label("Failed since")).to_have_value(local.strftime("%Y-%m-%dT%H:%M"))
    await page.screenshot(path=artifacts / "reenable-dialog.png")
    await dialog.get_by_role("button", name="Re-enable and recover").click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_role("status")).to_contain_text(f"Webhook {url} re-enabled.")
    # The skipped one, and the one the 410 answered if it started in the minute shown.
    await expect(page.get_by_role("status")).to_contain_text(re.compile("[12] failed or skipped deliver"))
    await expect(health).to_have_text("healthy")
    assert (await endpoint_state(api, endpoint["id"]))["disabled"] is False
    recovered = await delivery_outcome(client, f"{skipped}/recovered")
    assert recovered.result == "success"
    await page.screenshot(path=artifacts / "endpoints-reenabled.png", full_page=True)
