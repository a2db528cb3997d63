"""Fixtures for the browser tests: the fake GitHub (in a thread), the real app (`clawtrol serve` in a
subprocess) on its own database, and Debian's Chromium driven by Playwright's async API.

Everything here is module-scoped and shared by the stories in a module, which run on one event loop
(`pytestmark = pytest.mark.asyncio(loop_scope="module")` in the test module). People sign in through the
real OAuth flow against the fake GitHub; each has its own browser context (cookies, pages), and every
console error, uncaught page error, 5xx answer, JavaScript dialog and request to another host is
recorded so a story can assert there were none.

Chromium is never downloaded: Playwright drives /usr/bin/chromium (or Debian's headless shell) through
`executable_path`. `scripts/install-browser` installs it. Without it these tests are skipped, except
under CI (CI set), where that is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from ..conftest import make_environ, new_database
from ..fake_gateway import FakeGateway
from ..fake_github import FakeGitHubState, run_fake_github_in_thread
from ..helpers import PROJECT_ROOT, free_port, start_cli

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-headless-shell")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
SCREENSHOTS = PROJECT_ROOT / "test-output" / "screenshots"
DEFAULT_TIMEOUT_MS = 10_000  # generous for a loaded 2-core machine; live updates have their own 2 s
VIEWPORT = {"width": 1400, "height": 900}
# Avatars are data: URLs (the page's CSP allows them), so no page asks another site for a picture.
AVATAR_COLORS = {"octocat": "#6e40c9", "hubot": "#1f883d", "monalisa": "#bf3989"}
# Fake GitHub users besides octocat (signs in first: admin) and hubot (member).
EXTRA_USERS = {"monalisa": (2002, "Mona Lisa")}
SERVER_START_TIMEOUT = 30.0


def avatar(color: str) -> str:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40">'
           f'<circle cx="20" cy="20" r="20" fill="{color}"/></svg>')
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def chromium_executable() -> str:
    """Debian's Chromium, or skip (fail under CI) with what to run."""
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    message = f"no Chromium at {' or '.join(CHROMIUM_CANDIDATES)}: run scripts/install-browser (as root)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --- the servers -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_github() -> FakeGitHubState:
    with run_fake_github_in_thread() as state:
        for login, (github_id, name) in EXTRA_USERS.items():
            state.add_user(login, github_id, name=name, email=f"{login}@github.test")
        for login, user in state.users.items():
            user.avatar_url = avatar(AVATAR_COLORS.get(login, "#6e7781"))
        yield state


@dataclass
class ThreadedGateway:
    """The fake OpenClaw gateway on its own event loop in a thread, so it answers the server whatever the
    stories' loop is doing. `call` runs one of its coroutines there (e.g. raise_approval) and returns."""
    fake: FakeGateway
    loop: asyncio.AbstractEventLoop

    def call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextlib.contextmanager
def threaded_gateway(name: str, **options) -> Iterator[ThreadedGateway]:
    """A FakeGateway(**options) on its own loop in a thread named `name`, closed afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
    thread.start()
    gateway = ThreadedGateway(FakeGateway(**options), loop)
    gateway.call(gateway.fake.__aenter__())
    try:
        yield gateway
    finally:
        gateway.call(gateway.fake.close())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.fixture(scope="module")
def fake_gateway() -> Iterator[ThreadedGateway]:
    with threaded_gateway("fake-gateway", token="e2e-gateway-token") as gateway:
        yield gateway


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def e2e_database_url(tmp_path_factory) -> str:
    """An empty database for the server to migrate (the root conftest's new_database, for the module)."""
    async with new_database(tmp_path_factory.mktemp("e2e-db"), prefix="clawtrol_e2e") as url:
        yield url


@dataclass
class Server:
    base_url: str
    github: FakeGitHubState
    log_path: Path

    def log_entries(self) -> list[dict]:
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                entries.append({"level": "raw", "msg": line})
        return entries

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _wait_until_healthy(base_url: str, process: subprocess.Popen, server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"clawtrol serve exited with {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{base_url}/api/health", timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError:
            pass  # 503 while the database is not there yet
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"clawtrol serve did not answer /api/health in {SERVER_START_TIMEOUT} s:\n"
                               f"{server.log_tail()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def server(e2e_database_url, fake_github, fake_gateway, tmp_path_factory) -> Server:
    """`clawtrol serve` (which migrates first) on a free port, signing in through the fake GitHub. Its log
    goes to a file (a pipe nobody reads would fill and stall it); errors in it fail the module."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    workdir = tmp_path_factory.mktemp("e2e-server")
    environ = make_environ(e2e_database_url, workdir / "data", HOST="127.0.0.1", PORT=str(port),
                           PUBLIC_URL=base_url, GITHUB_URL=fake_github.base_url,
                           GITHUB_API_URL=fake_github.base_url, GATEWAY_URL=fake_gateway.fake.url,
                           GATEWAY_TOKEN=fake_gateway.fake.token, LOG_LEVEL="INFO",
                           DEFAULT_ROLE="member")  # the stories' team: people who sign up are members
    info = Server(base_url=base_url, github=fake_github, log_path=workdir / "server.log")
    with open(info.log_path, "w") as log:
        process = start_cli("serve", environ=environ, cwd=workdir, log=log)
    try:
        _wait_until_healthy(base_url, process, info)
        yield info
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    text = info.log_path.read_text(errors="replace")
    errors = [e for e in info.log_entries() if e.get("level") in ("error", "critical")]
    assert "Traceback" not in text and not errors, f"the server logged errors:\n{info.log_tail(80)}"


# --- the browser -----------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> Browser:
    executable = chromium_executable()
    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=executable, args=LAUNCH_ARGS, headless=True)
        try:
            yield instance
        finally:
            await instance.close()


def _is_favicon(text: str, url: str) -> bool:
    return "favicon" in url or "favicon" in text


@dataclass
class Person:
    """One person's browser: a context (own cookies) with one page, and what went wrong in it."""

    login: str
    crew: "Crew"
    context: BrowserContext
    page: Page
    problems: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    _live: asyncio.Event = field(default_factory=asyncio.Event)

    # -- wiring --

    def watch(self, page: Page) -> None:
        def on_console(message) -> None:
            if message.type == "error" and not _is_favicon(message.text, message.location.get("url", "")):
                self.problems.append(f"console error on {page.url}: {message.text}")

        async def on_dialog(dialog) -> None:  # alert(), confirm() …: none is expected
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
            await dialog.dismiss()

        def on_response(response) -> None:
            if response.status >= 500:
                self.problems.append(f"HTTP {response.status} for {response.request.method} {response.url}")

        def on_request(request) -> None:
            parts = urlsplit(request.url)
            if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname != "127.0.0.1":
                self.problems.append(f"request to another site: {request.method} {request.url}")

        def on_websocket(ws) -> None:
            if urlsplit(ws.url).path != "/ws":
                return
            ready = self._live

            def on_frame(payload) -> None:
                if isinstance(payload, str) and '"subscribed"' in payload:
                    ready.set()
            ws.on("framereceived", on_frame)

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problems.append(f"page error on {page.url}: {error}"))
        page.on("dialog", on_dialog)
        page.on("response", on_response)
        page.on("request", on_request)
        page.on("websocket", on_websocket)

    # -- navigation --

    async def goto(self, path: str, *, live: bool = False) -> None:
        """Open a page; with `live`, also wait until its /ws connection is subscribed to events."""
        self._live = asyncio.Event()
        await self.page.goto(path)
        if live:
            await self._wait_live()

    async def click_nav(self, label: str, *, live: bool = False) -> None:
        """Follow a link of the main navigation (a real click, a full page load)."""
        self._live = asyncio.Event()
        async with self.page.expect_navigation():
            await self.page.get_by_role("navigation", name="Main").get_by_role("link", name=label, exact=True).click()
        if live:
            await self._wait_live()

    async def _wait_live(self) -> None:
        try:
            await asyncio.wait_for(self._live.wait(), DEFAULT_TIMEOUT_MS / 1000)
        except TimeoutError:
            raise AssertionError(f"{self.page.url}: /ws did not answer 'subscribed' within "
                                 f"{DEFAULT_TIMEOUT_MS} ms") from None

    # -- the JSON API, as this signed-in browser --

    async def csrf_token(self) -> str:
        raw = await self.page.evaluate("() => document.body.getAttribute('hx-headers:inherited')")
        assert raw, f"no hx-headers:inherited on <body> of {self.page.url}"
        return json.loads(raw)["X-CSRF-Token"]

    async def api(self, method: str, path: str, body: dict | None = None, expect_status: int | None = None):
        headers = {"Accept": "application/json"}
        if method.upper() not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = await self.csrf_token()
        response = await self.page.request.fetch(self.crew.server.base_url + path, method=method.upper(),
                                                 headers=headers, data=body)
        text = await response.text()
        if expect_status is not None:
            assert response.status == expect_status, f"{method} {path}: {response.status} {text}"
        elif not response.ok:
            raise AssertionError(f"{method} {path}: {response.status} {text}")
        return json.loads(text) if text else None

    # -- the board --

    def card(self, title: str, column: str | None = None):
        scope = self.page.locator(f"#column-{column}" if column else "#board")
        return scope.locator(".task-card").filter(
            has=self.page.locator(".task-card-title").get_by_role("link", name=title, exact=True))

    async def create_task_in_dialog(self, title: str, *, priority: str = "P2", project: str | None = None,
                                    assignee: str | None = None) -> str:
        """The New task dialog on /board; returns the new task's id (from its card in Backlog)."""
        page = self.page
        await page.get_by_role("button", name="New task").click()
        dialog = page.locator("#task-dialog")
        await expect(dialog.get_by_role("heading", name="New task")).to_be_visible()
        await dialog.get_by_label("Title", exact=True).fill(title)
        await dialog.get_by_label("Priority").select_option(priority)
        if project:
            await dialog.get_by_label("Project").select_option(label=project)
        if assignee:
            await dialog.get_by_label("Assigned to").select_option(label=assignee)
        await dialog.get_by_role("button", name="Create task").click()
        await expect(dialog).to_be_hidden()
        card = self.card(title, "backlog")
        await expect(card).to_have_count(1)
        return await card.get_attribute("data-task-id")

    async def open_task(self, title: str):
        """Click a card's title: the task dialog opens with its detail."""
        await self.card(title).get_by_role("link", name=title, exact=True).click()
        detail = self.page.locator("#task-dialog #task-detail")
        await expect(detail.get_by_role("heading", level=2)).to_have_text(title)
        await expect(self.page.locator("#task-dialog")).to_be_visible()
        return detail

    async def close_task(self) -> None:
        await self.page.locator("#task-dialog").get_by_role("button", name="Close").click()
        await expect(self.page.locator("#task-dialog")).to_be_hidden()

    def toast(self, text: str):
        return self.page.locator("#toasts .toast", has_text=text)

    async def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


class Crew:
    """The people of a module's stories, each in their own browser context on the shared server."""

    def __init__(self, server: Server, browser: Browser):
        self.server = server
        self.browser = browser
        self.people: list[Person] = []

    async def new_person(self, login: str) -> Person:
        # Reduced motion: the app's CSS then skips its small animations (steadier screenshots).
        context = await self.browser.new_context(base_url=self.server.base_url, viewport=VIEWPORT,
                                                 reduced_motion="reduce")
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        page = await context.new_page()
        person = Person(login=login, crew=self, context=context, page=page)
        person.watch(page)
        self.people.append(person)
        return person

    async def sign_in(self, login: str) -> Person:
        """The real flow: /login → "Sign in with GitHub" → the fake GitHub approves `login` → back on /."""
        person = await self.new_person(login)
        await person.goto("/login")
        self.server.github.next_login = login
        await person.page.get_by_role("link", name="Sign in with GitHub").click()
        await person.page.wait_for_url(f"{self.server.base_url}/")
        await expect(person.page.locator(".user-menu")).to_be_visible()
        return person

    def problems(self) -> list[str]:
        found = []
        for person in self.people:
            found += [f"[{person.login}] {problem}" for problem in person.problems]
            found += [f"[{person.login}] unexpected dialog: {dialog}" for dialog in person.dialogs]
        return found

    def forget_problems(self) -> None:
        for person in self.people:
            person.problems.clear()
            person.dialogs.clear()

    def assert_clean(self) -> None:
        problems = self.problems()
        assert not problems, "the browser reported problems:\n" + "\n".join(problems)

    async def close(self) -> None:
        for person in self.people:
            await person.context.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def crew(server, browser) -> Crew:
    team = Crew(server, browser)
    try:
        yield team
    finally:
        await team.close()  # before the server stops, so no page sees its WebSocket drop


@pytest.fixture(autouse=True)
def _fresh_problem_lists(crew):
    """Each story starts with empty problem lists; it calls crew.assert_clean() at its end."""
    crew.forget_problems()
    yield


# --- the people -------------------------------------------------------------------------------------

@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def octocat(crew) -> Person:
    """The first person to sign in: admin."""
    return await crew.sign_in("octocat")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hubot(crew, octocat) -> Person:
    """Signs in after octocat: member."""
    return await crew.sign_in("hubot")

