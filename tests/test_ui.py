"""The dashboard in a real browser: Playwright for Python driving Debian's Chromium, against a worker on
PostgreSQL and RabbitMQ with real jobs. Every page is checked for JavaScript console errors, and a screenshot
of each is kept in test-artifacts/ui/."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner
from playwright.sync_api import Browser, Page, sync_playwright

from f8a_jobs_worker.cli.main import cli
from f8a_jobs_worker.client import Client
from f8a_jobs_worker.messaging.connect import transport_for
from f8a_jobs_worker.messaging.names import Names
from f8a_jobs_worker.ui.app import create_app
from f8a_jobs_worker.ui.people import People
from f8a_jobs_worker.worker import Worker
from tests.helpers import sink_of
from tests.messaging import body_of, publish_raw, read_queue

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "ui"
LATER = "2099-01-01T00:00:00Z"

pytestmark = pytest.mark.parametrize("broker_url", ["rabbitmq"], indirect=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def serve(broker_url: str, names: Names) -> Iterator[Callable[..., str]]:
    """Start the dashboard for this test's worker; its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(actions: bool = False, auth_header: str = "", operators: str = "") -> str:
        people = People("127.0.0.1", auth_header, operators, actions, "tester")
        app = create_app(
            people,
            lambda: Client(broker_url, names=names, timeout=30),
            lambda: transport_for(broker_url),
            names.events,
            names.dead,
        )
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the dashboard did not start"
        servers.append((server, thread))
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A tab that records JavaScript errors (none is allowed) and leaves a screenshot of each page it
    was on at the end of the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert errors == [], errors


@pytest.fixture
def worker(messaging_worker: Callable[..., Worker]) -> Worker:
    return messaging_worker()


def create(client: Client, job_id: str, **fields: Any) -> dict[str, Any]:
    return client.call("job.create", handler=fields.pop("handler", "noop"), job_id=job_id, **fields)


def test_the_overview_shows_the_counts_and_the_replicas(
    worker: Worker, client: Client, serve: Callable[..., str], page: Page
) -> None:
    for n in range(3):
        create(client, f"count-{n}", when=LATER)
    create(client, "broken-ish", handler="fail", when=LATER)
    page.goto(serve())
    assert page.inner_text("#count-user") == "4"
    assert page.inner_text("#scheduler-state") == "running"
    rows = page.locator("#replicas tbody tr")
    assert rows.count() == 1
    assert worker.replicas.replica_id in rows.first.inner_text()


def test_the_jobs_list_pages_through_250_jobs(
    worker: Worker, client: Client, serve: Callable[..., str], page: Page
) -> None:
    for n in range(250):
        client.send("job.create", {"handler": "noop", "job_id": f"page-{n:03d}", "when": LATER})
    assert client.call("job.list", limit=1)["jobs_count"] == 250 or _wait_count(client, 250)
    page.goto(serve() + "/jobs")
    seen: list[str] = []
    while True:
        seen += page.locator("#jobs tbody tr td:first-child").all_inner_texts()
        following = page.locator("#next")
        if following.count() == 0:
            break
        following.click()
        page.wait_for_load_state()
    assert seen == [f"page-{n:03d}" for n in range(250)]
    page.select_option("select[name=type]", "default")
    page.click(".filters button")
    page.wait_for_url("**/jobs?type=default*")
    assert page.locator("#jobs tbody tr").count() == 0
    page.goto(f"{page.url.split('/jobs')[0]}/jobs")
    page.fill("input[name=prefix]", "page-24")
    page.click(".filters button")
    page.wait_for_url("**prefix=page-24*")
    ids = page.locator("#jobs tbody tr td:first-child").all_inner_texts()
    assert ids == [f"page-24{n}" for n in range(10)]


def _wait_count(client: Client, count: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if client.call("job.list", limit=1)["jobs_count"] == count:
            return True
        time.sleep(0.2)
    return False


def test_a_failing_job_shows_its_traceback_and_a_paused_one_shows_paused(
    worker: Worker, client: Client, serve: Callable[..., str], page: Page
) -> None:
    create(client, "breaks", handler="fail", kwargs={"message": "disk full"}, when=LATER)
    create(client, "resting", when=LATER, state="paused")
    client.call("job.run_now", job_id="breaks")
    sink_of(worker).wait_for("job.failed", "breaks")
    base = serve()
    page.goto(f"{base}/jobs")
    assert page.locator("tr.state-paused td.state").inner_text() == "paused"
    page.goto(f"{base}/jobs/resting")
    assert page.inner_text("#job-state") == "paused"
    page.goto(f"{base}/failures")
    assert page.locator("#failures tbody tr").first.inner_text().count("breaks") == 1
    page.goto(base)
    assert page.locator("#failing li").all_inner_texts() == ["breaks fail"]
    assert page.locator("#paused li").all_inner_texts() == ["resting"]
    assert "failed 1" in page.inner_text("#runs-hour")
    assert page.locator("#lateness rect").count() == 8
    page.goto(f"{base}/jobs?failing=1")
    assert page.locator("#jobs tbody tr td:first-child").all_inner_texts() == ["breaks"]
    page.goto(f"{base}/jobs/breaks")  # last: the page the screenshot shows (make screenshot)
    row = page.locator("#history tbody tr.failed")
    assert row.count() == 1
    row.locator("summary").click()
    trace = row.locator("pre.traceback").inner_text()
    assert "Traceback" in trace and "RuntimeError: disk full" in trace
    assert page.locator("#strip .run.failed").count() == 1


def test_a_run_appears_without_a_reload(
    worker: Worker, client: Client, serve: Callable[..., str], page: Page
) -> None:
    create(client, "watched", when=LATER)
    page.goto(f"{serve()}/jobs/watched")
    page.evaluate("window.stillHere = true")
    assert page.locator("#history tbody tr.run-row").count() == 0
    page.wait_for_function("() => document.body.dataset.stream === 'on'")
    time.sleep(0.5)  # the tab's event stream is open
    client.call("job.run_now", job_id="watched")
    page.locator("#history tbody tr.run-row.executed").wait_for(timeout=15000)
    assert page.evaluate("window.stillHere") is True  # the same page: no reload


def test_actions_change_the_job_when_enabled(
    worker: Worker, client: Client, serve: Callable[..., str], page: Page
) -> None:
    create(client, "acted", when=LATER)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{serve(actions=True)}/jobs/acted")
    page.click("button[value=pause]")
    page.wait_for_url("**/jobs/acted?done=pause*")
    assert client.call("job.get", job_id="acted")["job"]["state"] == "paused"
    assert page.inner_text("#job-state") == "paused"
    assert page.inner_text("#done") == "pause: sent; the worker answered: paused"
    page.click("button[value=resume]")
    page.wait_for_url("**/jobs/acted?done=resume*")
    assert client.call("job.get", job_id="acted")["job"]["state"] == "running"
    page.click("button[value=run_now]")
    page.wait_for_url("**/jobs/acted?done=run_now*")
    sink_of(worker).wait_for("job.executed", "acted")
    history = client.call("job.history", job_id="acted")["runs"]
    assert history[0]["started_by"]["principal"] == "guest"  # the dashboard's broker user


def test_without_actions_there_is_no_control_and_no_way_to_act(
    worker: Worker, client: Client, serve: Callable[..., str], page: Page
) -> None:
    create(client, "untouchable", when=LATER)
    base = serve()
    page.goto(f"{base}/jobs/untouchable")
    assert page.locator("#actions").count() == 0
    assert page.locator("form[method=post]").count() == 0
    response = page.request.post(f"{base}/jobs/untouchable/do/pause", form={"token": "x"})
    assert response.status == 403
    assert client.call("job.get", job_id="untouchable")["job"]["state"] == "running"
    health = page.request.get(f"{base}/healthz")
    assert health.json() == {"ok": True, "live_events": True}
    assert "script-src 'self'" in health.headers["content-security-policy"]


def test_behind_a_proxy_the_person_comes_from_its_header_and_the_audit_names_them(
    messaging_worker: Callable[..., Worker],
    client: Client,
    serve: Callable[..., str],
    page: Page,
    tmp_path: Path,
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("principals:\n  guest: admin\nforwarders: [guest]\n")
    worker = messaging_worker(policy=str(policy))
    create(client, "proxied", when=LATER)
    base = serve(actions=True, auth_header="X-Forwarded-User", operators="alice")
    assert page.request.get(f"{base}/jobs/proxied").status == 401  # no one vouched
    page.set_extra_http_headers({"X-Forwarded-User": "bob"})
    page.goto(f"{base}/jobs/proxied")
    assert page.locator("#actions").count() == 0  # a viewer
    page.set_extra_http_headers({"X-Forwarded-User": "alice"})
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"{base}/jobs/proxied")
    page.click("button[value=run_now]")
    page.wait_for_url("**/jobs/proxied?done=run_now*")
    sink_of(worker).wait_for("job.executed", "proxied")
    (run,) = client.call("job.history", job_id="proxied")["runs"]
    assert run["started_by"] == {
        "principal": "guest",
        "source": "rabbitmq",
        "on_behalf_of": "alice",
    }
    (entry,) = client.call("audit.list", job_id="proxied", limit=1)["entries"]
    assert entry["command"] == "job.run_now" and entry["by"]["on_behalf_of"] == "alice"


def test_beyond_loopback_the_dashboard_needs_an_authenticating_proxy(broker_url: str) -> None:
    env = {"F8A_JOBS_BROKER_URL": broker_url}
    refused = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0"], env=env)
    assert refused.exit_code == 78
    assert "F8A_JOBS_UI_AUTH_HEADER" in refused.output
    typo = CliRunner().invoke(cli, ["ui"], env={**env, "F8A_JOBS_UI_PROT": "9000"})
    assert typo.exit_code == 78 and "did you mean F8A_JOBS_UI_PORT" in typo.output


def test_dead_letters_are_shown_and_left_in_their_queue(
    worker: Worker,
    client: Client,
    serve: Callable[..., str],
    page: Page,
    broker_url: str,
    names: Names,
) -> None:
    publish_raw(broker_url, names.commands, b"{not json", correlation_id="bad-1")
    sink_of(worker).wait_for("command.rejected")
    base = serve()
    for _ in range(2):  # looking twice: the letter is still there
        page.goto(f"{base}/dead-letters")
        rows = page.locator("#dead tbody tr")
        assert rows.count() == 1
        assert "invalid_json" in rows.first.inner_text() and "{not json" in rows.first.inner_text()
    (kept,) = read_queue(broker_url, names.dead, 1)
    assert body_of(kept) == b"{not json"


def test_every_page_renders_without_errors_and_leaves_a_screenshot(
    worker: Worker, client: Client, serve: Callable[..., str], page: Page
) -> None:
    create(client, "shown", periodically="1 day", kwargs={})
    create(client, "fails", handler="fail", when=LATER)
    client.call("job.run_now", job_id="fails")
    sink_of(worker).wait_for("job.failed", "fails")
    base = serve()
    for name, path in (
        ("overview", "/"),
        ("jobs", "/jobs"),
        ("job", "/jobs/shown"),
        ("failures", "/failures"),
        ("dead-letters", "/dead-letters"),
    ):
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        page.screenshot(path=str(ARTIFACTS / f"page-{name}.png"), full_page=True)
    # through the request API: a page that answers 404 logs a console error
    missing = page.request.get(f"{base}/jobs/no-such-job")
    assert missing.status == 404 and "job_not_found" in missing.text()
