"""Webhook logs in a browser: the seed's columns, filters, paging, a delivery's detail, a re-run."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.async_api import Page, expect
from temporalio.client import Client

from domain.ids import first_connection_id
from settings import Settings
from tests.integration.helpers import create_endpoint, delivery_outcome, list_ids, post_event, tracking_event
from tests.receiver import OK, Receiver, Reply, error
from tests.ui.conftest import TIME_ZONE
from tests.waiting import eventually

SEED_COLUMNS = [
    "Date",
    "Date End",
    "Order ID",
    "Transaction ID",
    "Carrier",
    "Endpoint",
    "Event",
    "Result",
    "Retry",
    "Time Spent",
]


async def clear_filters(page: Page) -> None:
    """Clear, and wait for the new screen: controls of the one it replaces would lose their input.

    The URL changes at the click, before the old screen is replaced, and the old
    screen is not busy either; only the new screen's empty filters show it is there.
    """
    await page.get_by_role("link", name="Clear").click()
    await expect(page).to_have_url(re.compile(r"#/logs$"))
    for name in ("Endpoint", "Event", "Result", "HTTP status", "Order ID"):
        await expect(page.get_by_label(name)).to_have_value("")
    await expect(page.get_by_label("Retry", exact=True)).to_have_value("")
    await expect(page.locator("#view")).not_to_have_attribute("aria-busy", "true")


async def shown_ids(page: Page) -> list[str]:
    """The ids of the rows shown, from their Details links."""
    links = page.locator("tbody a", has_text="Details")
    hrefs = await links.evaluate_all("(links) => links.map((a) => a.getAttribute('href'))")
    return [href.removeprefix("#/deliveries/") for href in hrefs]


async def test_the_log_filters_and_pages_like_the_api(
    page: Page, dashboard: str, api: httpx.AsyncClient, client: Client, receiver: Receiver, artifacts: Path
) -> None:
    good = await create_endpoint(api, receiver.url(), description="Main shop")
    bad = await create_endpoint(api, receiver.url(error(500)), retry={"enabled": True, "max_retries": 1})
    order = f"ord-{uuid.uuid4().hex[:8]}"
    deliveries = []
    for _ in range(6):
        accepted = await post_event(api, tracking_event(order_id=order, carrier="UPS"))
        deliveries += [d["id"] for d in accepted["deliveries"]]
    for delivery_id in deliveries:
        await delivery_outcome(client, delivery_id)
    await eventually(lambda: list_ids(api, order_id=order, result="failed"), lambda ids: len(ids) == 6)

    await page.goto(f"{dashboard}/ui/")
    await page.get_by_role("link", name="Webhook logs").click()
    await expect(page.get_by_role("heading", name="Webhook logs")).to_be_visible()
    shown = [*(c.upper() for c in SEED_COLUMNS), "STATUS", "ERROR", "ACTIONS"]
    assert await page.locator("thead th").all_inner_texts() == shown
    await expect(page.locator("caption")).to_have_text(f"Newest first. Times in {TIME_ZONE}.")
    await expect(page.locator("tbody tr").first.locator('td[data-label="Order ID"]')).to_have_text(order)
    await page.screenshot(path=artifacts / "logs.png", full_page=True)

    # The four filters and the order id, as the API combines them.
    await page.get_by_label("Endpoint").select_option(label=bad["url"])
    await page.get_by_label("Result").select_option("failed")
    await page.get_by_label("Retry", exact=True).select_option("true")
    await page.get_by_label("Order ID").fill(order)
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile("result=failed"))
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(6)
    for cells in await rows.all():
        await expect(cells.locator('td[data-label="Result"]')).to_have_text("failed")
        await expect(cells.locator('td[data-label="Status"]')).to_have_text("500")
        await expect(cells.locator('td[data-label="Error"]')).to_contain_text("HTTP response code is 500")
        await expect(cells.locator('td[data-label="Retry"]')).to_have_text("1")
        await expect(cells.locator('td[data-label="Carrier"]')).to_have_text("UPS")
    await expect(page.get_by_role("button", name="Apply filters")).to_be_focused()
    await page.screenshot(path=artifacts / "logs-filtered.png", full_page=True)
    await page.get_by_label("HTTP status").fill("500")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile("status_code=500"))
    await expect(rows).to_have_count(6)

    await clear_filters(page)
    await page.get_by_label("Endpoint").select_option(good["id"])
    await page.get_by_label("Event").select_option("ORDER_SHIPPED")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(rows).to_have_count(1)
    assert await shown_ids(page) == [first_connection_id(good["id"])]

    # Dates are the browser's wall-clock times; a window in the future holds nothing.
    await page.get_by_label("Started from").fill("2099-01-01T00:00")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page).to_have_url(re.compile(r"since=2098-12-31T23%3A00%3A00.000Z"))
    await expect(page.get_by_text("No deliveries match these filters.")).to_be_visible()

    # Pages of 10: every delivery of the order once, newest first.
    await clear_filters(page)
    await page.get_by_label("Order ID").fill(order)
    await page.get_by_label("Rows per page").select_option("10")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(rows).to_have_count(10)
    first_page = await shown_ids(page)
    await page.get_by_role("link", name="Next page").click()
    await expect(rows).to_have_count(2)
    await expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    assert sorted(first_page + await shown_ids(page)) == sorted(deliveries)
    await page.get_by_role("link", name="First page").click()
    await expect(rows).to_have_count(10)


async def test_a_failed_delivery_is_explained_and_re_run(
    page: Page,
    dashboard: str,
    api: httpx.AsyncClient,
    client: Client,
    receiver: Receiver,
    settings: Settings,
    artifacts: Path,
) -> None:
    url = receiver.url(error(500))
    endpoint = await create_endpoint(api, url)
    first = first_connection_id(endpoint["id"])
    await delivery_outcome(client, first)
    await eventually(lambda: list_ids(api, endpoint_id=endpoint["id"], result="failed"), lambda ids: ids == [first])

    await page.goto(f"{dashboard}/ui/")
    await page.get_by_role("link", name=f"Logs of {url}").click()
    await expect(page.get_by_role("heading", name="Webhook logs")).to_be_visible()
    await page.get_by_label("Result").select_option("failed")
    await page.get_by_role("button", name="Apply filters").click()
    await expect(page.locator("tbody tr")).to_have_count(1)
    await page.get_by_role("link", name=f"Details of {first}").click()

    await expect(page).to_have_url(re.compile(f"#/deliveries/{re.escape(first)}$"))
    await expect(page.locator(".facts .badge")).to_have_text("failed")
    message = "HTTP response code is 500 (Internal Server Error), it must be 200"
    await expect(page.locator(".facts .error-text")).to_have_text(message)
    response = page.locator("section", has=page.get_by_role("heading", name="Response"))
    await expect(response.locator(".status-line")).to_have_text("500 Internal Server Error")
    attempts = page.get_by_role("region", name="Attempts")
    await expect(attempts.get_by_role("heading")).to_have_text("1 attempt")
    await expect(attempts.locator("li")).to_have_count(1)
    await expect(attempts.locator("li").first).to_contain_text("#1")
    await expect(attempts.locator("li").first).to_contain_text("500 Internal Server Error")
    await expect(attempts.locator("li").first).to_contain_text(message)
    web_ui = page.get_by_role("link", name="Open the run in the Temporal Web UI")
    await expect(web_ui).to_have_attribute("href", re.compile("^" + re.escape(settings.temporal_ui_url)))
    await expect(web_ui).to_have_attribute("href", re.compile(re.escape(quote(first, safe=""))))
    await page.screenshot(path=artifacts / "delivery-failed.png", full_page=True)

    # The receiver is fixed; the re-run is a new delivery that this page follows to its end.
    receiver.script(url, OK)
    await page.get_by_role("button", name=f"Retry {first}").click()
    await expect(page).to_have_url(re.compile(r"#/deliveries/delivery/[^?]+/rerun-[0-9a-f]+$"))
    await expect(page.get_by_role("status").filter(has_text="Re-run started")).to_be_visible()
    await expect(page.locator(".facts .badge")).to_have_text("success")
    await expect(page.get_by_role("link", name=first)).to_be_visible()
    await expect(response.locator(".status-line")).to_have_text("200 OK")
    assert len(receiver.requests(url)) == 2
    await page.screenshot(path=artifacts / "delivery-rerun.png", full_page=True)


async def test_a_narrow_screen_stacks_rows_and_scrolls_long_bodies(
    page: Page, dashboard: str, api: httpx.AsyncClient, client: Client, receiver: Receiver, artifacts: Path
) -> None:
    long_body = b'{"note": "' + b"a very long answer " * 400 + b'"}'
    endpoint = await create_endpoint(api, receiver.url(Reply(body=long_body)))
    first = first_connection_id(endpoint["id"])
    await delivery_outcome(client, first)
    await eventually(lambda: list_ids(api, endpoint_id=endpoint["id"]), lambda ids: ids == [first])
    await page.set_viewport_size({"width": 390, "height": 844})
    no_sideways_scroll = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"

    await page.goto(f"{dashboard}/ui/#/logs?endpoint_id={endpoint['id']}")
    await expect(page.locator("tbody tr")).to_have_count(1)
    assert await page.evaluate(no_sideways_scroll)
    await page.screenshot(path=artifacts / "logs-narrow.png", full_page=True)

    await page.get_by_role("link", name=f"Details of {first}").click()
    body = page.locator("section", has=page.get_by_role("heading", name="Response")).locator("pre")
    await expect(body).to_contain_text("a very long answer")
    assert await body.evaluate("(pre) => pre.scrollWidth > pre.clientWidth")
    assert await page.evaluate(no_sideways_scroll)
    await page.screenshot(path=artifacts / "delivery-narrow.png")
