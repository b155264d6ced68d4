"""The daemon's status page in a real browser: Debian's chromium driven by Playwright for Python.

Screenshots go to $LOOMKIN_SCREENSHOT_DIR when set (the README's was made so), else the test's tmp dir.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession

from conftest import _http_streams, free_port, http_daemon, ok, processes, serve

pytestmark = pytest.mark.anyio

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EVERYTHING = Path(__file__).parent.parent / "node_modules" / ".bin" / "mcp-server-everything"
PYLSP = Path(sys.executable).parent / "pylsp"
if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (make test installs Debian's chromium)", allow_module_level=True)


@asynccontextmanager
async def browser_page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield await browser.new_page(viewport={"width": 1400, "height": 1100})
        finally:
            await browser.close()


def screenshot_path(tmp_path: Path, name: str) -> Path:
    directory = Path(os.environ.get("LOOMKIN_SCREENSHOT_DIR", tmp_path))
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


async def until(condition: Any, timeout: float = 15) -> Any:
    """Poll `condition()` (a coroutine function) until it returns something truthy (the page has no eval: CSP)."""
    with anyio.fail_after(timeout):
        while not (value := await condition()):
            await anyio.sleep(0.05)
    return value


async def pid_shown(page: Any, other_than: str = "") -> str:
    """The language server's pid once the page shows it running (and, after a restart, a new one)."""
    cell = page.locator("#lsp tr:nth-child(2) td:nth-child(3)")

    async def pid() -> str:
        text = (await cell.inner_text()) if await cell.count() else ""
        return text if text and text != other_than else ""

    return await until(pid)


async def test_the_page_shows_servers_and_follows_the_graph_and_a_restart(project: Path, tmp_path: Path) -> None:
    (project / "app.py").write_text("import os\n")
    (project / ".loomkin.toml").write_text(
        f'[lsp]\nservers = [{{ name = "pylsp", command = "{PYLSP}" }}]\n\n'
        f'[mcp]\nservers = [{{ name = "everything", command = "{EVERYTHING}" }}]\n'
    )
    async with http_daemon(project, "http") as url, browser_page() as page:
        base = url.removesuffix("/mcp")
        await page.goto(base + "/")
        await page.wait_for_selector("#lsp >> text=pylsp")
        await page.wait_for_selector("#upstreams >> text=ready", timeout=30_000)
        # An empty graph says what fills it, instead of a blank box.
        await page.wait_for_selector("#graph-empty:not([hidden]) >> text=No decisions yet")
        async with _http_streams(url) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            # A decision logged over MCP appears in the picture without a reload.
            long_title = "Ship the status page with every panel a person needs to see what runs and why"
            await ok(session, "decision_log", node_type="goal", title=long_title)
            await page.wait_for_selector("#graph .node[data-type=goal]", timeout=2_000)
            assert await page.is_hidden("#graph-empty")
            await page.click("#graph .node[data-type=goal]")
            assert long_title in await page.inner_text("#details")
            # Cut at a word, the whole title in the node's tooltip.
            shown = await page.text_content("#graph .node[data-type=goal] text") or ""
            assert shown.endswith("…") and shown.removesuffix("…").removeprefix("goal: ") in long_title
            assert not shown.removesuffix("…").endswith(" ")
            assert await page.text_content("#graph .node[data-type=goal] title") == f"goal: {long_title}"
            await ok(session, "decision_log", node_type="decision", title="Draw it as SVG",
                     parent_id=await page.get_attribute("#graph .node[data-type=goal]", "data-id"))  # fmt: skip
            await page.wait_for_selector("#graph .edge-label >> text=leads_to", timeout=2_000)
            assert await page.get_attribute("#graph path.edge.leads_to", "marker-end") == "url(#arrow)"

            # The language server, started, killed, and back after the next use.
            await ok(session, "lsp_diagnostics", file_path="app.py")
            first = await pid_shown(page)
            await page.wait_for_selector("#diagnostics >> text=app.py")
            # Each file's messages, a click away.
            messages = "#diagnostic-messages details[data-file='app.py']"
            await page.click(f"{messages} summary")
            await page.wait_for_selector(f"{messages} pre >> text=imported but unused")
            os.kill(int(first), signal.SIGKILL)
            await page.wait_for_selector("#lsp >> text=crashed", timeout=10_000)
            await ok(session, "lsp_diagnostics", file_path="app.py")
            assert await pid_shown(page, other_than=first) != first
            await page.wait_for_selector("#lsp tr:nth-child(2) td:nth-child(5) >> text=1")  # one restart
            await page.wait_for_selector("#calls >> text=decision_log")
        await page.screenshot(path=str(screenshot_path(tmp_path, "status-page.png")), full_page=True)

        async with httpx2.AsyncClient() as client:
            for path in ("/", "/status/events", "/status.json"):
                foreign = await client.get(base + path, headers={"Origin": "http://evil.example"})
                assert foreign.status_code == 403, path
                rebinding = await client.get(base + path, headers={"Host": "evil.example"})
                assert rebinding.status_code in (403, 421), path


async def test_the_page_says_plainly_when_the_daemon_has_stopped(project: Path) -> None:
    async with browser_page() as page:
        async with http_daemon(project, "http") as url:
            await page.goto(url.removesuffix("/mcp") + "/")
            await page.wait_for_selector("#live >> text=live")
            assert await page.is_hidden("#stopped")
        await page.wait_for_selector("#stopped:not([hidden]) >> text=Stopped: loomkin-mcp is not answering")
        assert "stopped" in (await page.get_attribute("body", "class") or "")
        assert await page.inner_text("#live") == "stopped"


async def test_with_a_token_the_page_asks_for_it_and_keeps_it_out_of_reach(project: Path) -> None:
    async with http_daemon(project, "http", env={"LOOMKIN_TOKEN": "s3cret"}) as url, browser_page() as page:
        base = url.removesuffix("/mcp")
        async with httpx2.AsyncClient() as client:
            assert (await client.get(base + "/status/events")).status_code == 401
            assert (
                await client.post(base + "/status/login", headers={"Authorization": "Bearer nope"})
            ).status_code == 401
        await page.goto(base + "/")
        await page.wait_for_selector("#login:not([hidden])")
        assert await page.is_hidden("#page")
        await page.fill("#token", "wrong")
        await page.click("#login-form button")
        await page.wait_for_selector("#login-error >> text=not the token")
        await page.fill("#token", "s3cret")
        await page.click("#login-form button")
        await page.wait_for_selector("#page:not([hidden])")
        await page.wait_for_selector("#live >> text=live")
        # The cookie is HttpOnly (no script reads it) and holds a value derived from the token, not the token.
        assert await page.evaluate("document.cookie") == ""
        cookies = await page.context.cookies()
        assert cookies and cookies[0]["httpOnly"] and "s3cret" not in cookies[0]["value"]
        assert "s3cret" not in page.url


async def test_a_thousand_nodes_and_two_hundred_diagnostics_still_draw(project: Path, tmp_path: Path) -> None:
    from loomkin_mcp.config import load_settings
    from loomkin_mcp.decisions._service import DecisionService
    from loomkin_mcp.sandbox._service import Sandbox
    from loomkin_mcp.workspace import Workspace

    workspace = Workspace(project, load_settings(project))
    service = DecisionService(workspace, Sandbox(workspace))
    goal = service.store.add_node("goal", "A goal with a thousand steps")
    for n in range(999):
        service.store.add_node("action", f"Step {n}", link=(goal.id, "leads_to", None))
    service.close()
    (project / "noisy.py").write_text("".join(f"import module_{n}\n" for n in range(200)))
    async with http_daemon(project, "http") as url, browser_page() as page:
        async with _http_streams(url) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await ok(session, "decision_query", query_type="pulse")  # opens the store, as any decision tool does
            await ok(session, "lsp_diagnostics", file_path="noisy.py")
            await page.goto(url.removesuffix("/mcp") + "/")
            nodes = page.locator("#graph .node")
            await until(lambda: _equals(nodes.count(), 1000), timeout=30)
            await page.wait_for_selector("#diagnostics >> text=noisy.py")
            assert await page.inner_text("#diagnostics tr:nth-child(2) td:nth-child(3)") == "200"
            # Still answers a click at once after drawing them all.
            await page.click("#graph .node[data-type=goal]")
            assert "A goal with a thousand steps" in await page.inner_text("#details")
            await anyio.sleep(0)
        await page.screenshot(path=str(screenshot_path(tmp_path, "status-page-1000-nodes.png")))


async def _equals(value: Any, expected: Any) -> bool:
    return await value == expected


async def test_a_stdio_session_shows_its_page_with_status_port(project: Path) -> None:
    """`--stdio --status-port N`: the same page for the editor's own session, on loopback, live, with its checks."""
    port = free_port()
    (project / "app.py").write_text("import os\n")
    (project / ".loomkin.toml").write_text(f'[lsp]\nservers = [{{ name = "pylsp", command = "{PYLSP}" }}]\n')
    async with serve(project, "--status-port", str(port)) as session, browser_page() as page:
        await ok(session, "lsp_diagnostics", file_path="app.py")
        await page.goto(f"http://127.0.0.1:{port}/")
        await page.wait_for_selector("#live >> text=live")
        await page.wait_for_selector("#lsp >> text=running")
        await page.wait_for_selector("#diagnostics >> text=app.py")
        async with httpx2.AsyncClient() as client:
            foreign = await client.get(
                f"http://127.0.0.1:{port}/status.json", headers={"Origin": "http://evil.example"}
            )
            assert foreign.status_code == 403
    assert processes("pylsp", cwd=project) == []


async def test_a_daemon_without_root_lists_each_project_its_clients_opened(tmp_path: Path) -> None:
    from test_roots import client_of_daemon, make_project

    alpha = make_project(tmp_path / "alpha", "alpha\n")
    beta = make_project(tmp_path / "beta", "beta\n")
    async with browser_page() as page, http_daemon(tmp_path, "http", pinned=False) as url:
        await page.goto(url.removesuffix("/mcp") + "/")
        await page.wait_for_selector("#projects >> text=none yet: each client is served its editor's first root")
        assert await page.inner_text("#root") == "no project open yet"
        async with client_of_daemon(url, [alpha]) as first, client_of_daemon(url, [beta]) as second:
            await ok(first, "file_read", file_path="README.md")
            await ok(second, "file_read", file_path="README.md")
            rows = page.locator("#projects tr")

            async def listed() -> list[str]:
                texts = [await rows.nth(index).inner_text() for index in range(await rows.count())]
                return texts if len(texts) == 3 else []

            shown = await until(listed)
            assert any(str(alpha) in row and "trusted" in row for row in shown), shown
            assert any(str(beta) in row for row in shown), shown
            sessions = page.locator("#sessions")
            await until(lambda: sessions.inner_text())
            assert alpha.name in await sessions.inner_text() and beta.name in await sessions.inner_text()
            await page.screenshot(path=str(screenshot_path(tmp_path, "status-page-projects.png")), full_page=True)
