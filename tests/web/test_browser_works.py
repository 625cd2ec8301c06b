"""The browser the web tests drive starts, renders a loopback page and logs its requests."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from tests.web.conftest import RecordedRequest, Screenshot


async def test_chromium_renders_a_loopback_page_and_logs_its_post(
    page: Page, requests: list[RecordedRequest], screenshot: Screenshot
) -> None:
    async def form(request: web.Request) -> web.Response:
        return web.Response(
            text="<form method=post><input name=q value=hello><button>Go</button></form>",
            content_type="text/html",
        )

    async def posted(request: web.Request) -> web.Response:
        value = (await request.post())["q"]
        assert isinstance(value, str)
        return web.Response(text=f"got {value}", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", form)
    app.router.add_post("/", posted)
    async with TestServer(app, host="127.0.0.1") as server:
        await page.goto(str(server.make_url("/")))
        await page.click("button")
        await page.wait_for_selector("text=got hello")
        shot = await screenshot(page, "browser-check")
    assert shot.stat().st_size > 1000
    assert [(r.method, r.body) for r in requests] == [("GET", None), ("POST", b"q=hello")]
