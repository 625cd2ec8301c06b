"""A real browser for the web page tests: Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright launches the system's ``chromium`` (installed
by ``make system-deps``). Each test gets a fresh browser context that records every
request it makes (``requests``), so a test can prove from the browser's own network
log what left the page. ``screenshot(page, name)`` saves a full-page PNG into the
screenshot folder: ``HASHHUB_SCREENSHOTS`` if set (``docs/images`` is refreshed
that way), else a temporary folder. ``server`` serves the real hub whose home a test
module's own ``home`` fixture makes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, Request, async_playwright

from hub.app import create_app

Screenshot = Callable[[Page, str], Awaitable[Path]]


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: `make system-deps` installs it")
    return found


@dataclass
class RecordedRequest:
    """One request the browser sent: what the network log says left the page."""

    method: str
    url: str
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def requests() -> list[RecordedRequest]:
    """Every request of the ``context`` fixture's pages, in order."""
    return []


@pytest.fixture
async def context(
    browser: Browser, requests: list[RecordedRequest]
) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport={"width": 1280, "height": 900})

    def record(request: Request) -> None:
        requests.append(
            RecordedRequest(request.method, request.url, request.post_data_buffer, request.headers)
        )

    made.on("request", record)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("HASHHUB_SCREENSHOTS")
    if configured:
        path = Path(configured)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Screenshot:
    async def take(page: Page, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
async def server(home: Path) -> AsyncIterator[TestServer]:
    """The real hub app of the module's ``home`` on loopback, its scheduler off."""
    started = TestServer(create_app(home, schedule=False), host="127.0.0.1")
    await started.start_server()
    try:
        yield started
    finally:
        await started.close()
