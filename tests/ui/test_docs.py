"""`/docs` in Chromium with nothing reachable but this machine: Swagger UI must come from the API
itself and run under its Content-Security-Policy (issue 17: the page was blank offline)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Page, Route, expect


async def test_docs_show_every_route_offline_under_a_same_origin_policy(
    page: Page, api: httpx.AsyncClient, artifacts: Path
) -> None:
    elsewhere: list[str] = []

    async def this_machine_only(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.context.route("**/*", this_machine_only)
    document = (await api.get("/openapi.json")).json()
    operations = sorted((method.upper(), path) for path, ops in document["paths"].items() for method in ops)

    answer = await page.goto(f"{str(api.base_url).rstrip('/')}/docs")

    assert answer is not None and answer.ok
    await expect(page.get_by_role("heading", name="Webhook delivery service")).to_be_visible()
    blocks = page.locator(".opblock")
    await expect(blocks).to_have_count(len(operations))
    shown = sorted(
        zip(
            await blocks.locator(".opblock-summary-method").all_inner_texts(),
            [await p.get_attribute("data-path") for p in await blocks.locator(".opblock-summary-path").all()],
            strict=True,
        )
    )
    assert shown == operations

    # "Try it out" reaches the API itself (connect-src 'self').
    health = page.locator(".opblock", has=page.locator('[data-path="/healthz"]'))
    await health.locator(".opblock-summary").click()
    await health.get_by_role("button", name="Try it out").click()
    await health.get_by_role("button", name="Execute").click()
    await expect(health.locator(".live-responses-table tr.response .response-col_status")).to_have_text("200")
    await page.screenshot(path=artifacts / "docs.png")

    policy = dict(directive.strip().split(" ", 1) for directive in answer.headers["content-security-policy"].split(";"))
    assert {name: policy[name] for name in ("default-src", "script-src", "style-src", "connect-src")} == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "connect-src": "'self'",
    }
    assert elsewhere == []
    # A refused script, style or image would be a console error: the `page` fixture fails the test on one.
