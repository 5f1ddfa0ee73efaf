"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against the real stack.

Playwright comes from PyPI with its driver; the browser is the system's (`apt-get install chromium`),
never one Playwright downloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "ui"
# The browser's zone differs from the machine's (UTC), so a time shown in UTC would be caught.
TIME_ZONE = "Europe/Rome"

# Deliveries and tests take a moment end to end; the default 5 s is tight on a busy CI machine.
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get update && apt-get install -y chromium")
    return CHROMIUM


@pytest_asyncio.fixture(scope="session")
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest_asyncio.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh tab (no stored token); a script error or a refused resource on it fails the test."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=TIME_ZONE)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    # The API's own 4xx answers are logged as failed loads; they are expected, anything else is not.
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    yield page
    await context.close()
    assert not problems, problems


@pytest.fixture
def dashboard(api: httpx.AsyncClient) -> str:
    """Where the served app lives; `/` redirects to the dashboard."""
    return str(api.base_url).rstrip("/")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest_asyncio.fixture(autouse=True)
async def no_endpoints_left(api: httpx.AsyncClient) -> AsyncIterator[None]:
    """Each test leaves the registry empty, as the integration tests expect to find it."""
    yield
    for endpoint in (await api.get("/v1/endpoints")).json():
        await api.delete(f"/v1/endpoints/{endpoint['id']}")
