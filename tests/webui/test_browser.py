"""The dashboard in Debian's Chromium (Playwright): log in, charts drawn from the seeded records,
risk edits persisted or refused inline, controls, no console error. Screenshots go to
``test-output/screenshots/`` for a human to look at."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmg_autotrader.domain import Mode
from kmg_autotrader.webui import BackgroundServer
from tests.webui.conftest import OUTPUT_DIR, TOKEN, make_settings

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = OUTPUT_DIR / "screenshots"
EQUITY_LEN = "Chart.getChart(document.getElementById('equity-chart'))?.data.datasets[0].data.length"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"),
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, live_server: BackgroundServer) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh page that records console errors and failed requests."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.problems = []  # type: ignore[attr-defined]
    page.on(
        "console",
        lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"),
    )
    page.on("pageerror", lambda exc: page.problems.append(f"page error: {exc}"))
    page.on(
        "response",
        lambda r: r.status >= 500 and page.problems.append(f"{r.status} {r.url}"),
    )
    yield page
    context.close()


def login(page, base: str, next_path: str = "/") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}{next_path}")
    assert "/login" in page.url
    page.fill("#token", TOKEN)
    page.click("#login-submit")
    page.wait_for_url(f"{base}{next_path}")


def shot(page, name: str, full: bool = True) -> Path:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    if full:
        page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full)
    return path


def chart_points(page, canvas_id: str) -> int:  # type: ignore[no-untyped-def]
    return int(
        page.evaluate(
            """(id) => {
                const chart = Chart.getChart(document.getElementById(id));
                return chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0;
            }""",
            canvas_id,
        )
    )


def test_wrong_token_is_refused(page, live_server: BackgroundServer) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{live_server.url}/login")
    shot(page, "01-login", full=False)
    page.fill("#token", "not-the-token")
    page.click("#login-submit")
    assert page.locator("#login-error").inner_text() == "That token is not right."
    page.problems.clear()  # the 401 of the refused form is logged by the browser on purpose


def test_dashboard_draws_charts_from_the_records(page, live_server: BackgroundServer) -> None:  # type: ignore[no-untyped-def]
    base = live_server.url
    login(page, base)
    page.wait_for_function(f"() => {EQUITY_LEN} > 0")
    page.wait_for_selector("#trades-table tbody tr")
    page.wait_for_selector("#flow-table tbody tr")
    page.wait_for_function("() => document.querySelector('#health-list dt') !== null")
    assert chart_points(page, "equity-chart") == 288
    assert chart_points(page, "rejections-chart") == 3
    assert chart_points(page, "confidence-chart") >= 8
    assert page.locator("#trades-table tbody tr").count() == 5
    assert page.locator("#positions-table tbody tr").count() == 1
    assert page.locator("#mode-badge").inner_text() == "PAPER"
    assert page.locator("#m-winrate").inner_text() == "60.0 %"
    assert "No model yet" in page.locator("#ml-status").inner_text()
    shot(page, "02-dashboard")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(200)
    shot(page, "03-dashboard-phone", full=False)
    page.locator("#trades-table").scroll_into_view_if_needed()
    shot(page, "03-dashboard-phone-trades", full=False)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, "the phone layout must not scroll sideways"
    assert page.problems == []


def test_live_update_appends_an_equity_point(page, live_server: BackgroundServer) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from kmg_autotrader.domain import EquityPoint, Mode
    from tests.webui.seed import START, STEP

    login(page, live_server.url)
    page.wait_for_function(f"() => {EQUITY_LEN} === 288")
    page.wait_for_timeout(600)  # the stream is connected and the watcher has its markers
    live_server.repos.equity.add(  # type: ignore[attr-defined]
        EquityPoint(Mode.PAPER, START + 400 * STEP, Decimal(10_700), Decimal(7000), Decimal(3700))
    )
    page.wait_for_function(
        f"() => {EQUITY_LEN} === 289",
        timeout=10_000,
    )
    assert page.problems == []


def test_pause_resume_and_flatten_with_confirmation(page, live_server: BackgroundServer) -> None:  # type: ignore[no-untyped-def]
    login(page, live_server.url)
    page.wait_for_function("() => document.querySelector('#health-list dt') !== null")
    page.click("#btn-pause")
    page.wait_for_selector("#paused-badge:not([hidden])")
    page.click("#btn-resume")
    page.wait_for_selector("#paused-badge", state="hidden")
    page.click("#btn-flatten")
    assert page.locator("#flatten-dialog").is_visible()
    shot(page, "04-flatten-confirm", full=False)
    page.click("#flatten-cancel")
    assert not page.locator("#flatten-dialog").is_visible()
    repos = live_server.repos  # type: ignore[attr-defined]
    assert not repos.events.recent("paper", kind="flatten_requested")
    page.click("#btn-flatten")
    page.click("#flatten-confirm")
    page.wait_for_function(
        "() => document.getElementById('toast').textContent.includes('Flatten requested')"
    )
    assert repos.events.recent("paper", kind="flatten_requested")
    page.click("#btn-resume")
    page.wait_for_selector("#paused-badge", state="hidden")
    assert page.problems == []


def test_clear_breaker_asks_first_then_clears(page, live_server: BackgroundServer) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from kmg_autotrader.domain.clock import now_ms
    from kmg_autotrader.risk.clearing import stored_manager

    repos = live_server.repos  # type: ignore[attr-defined]
    settings = make_settings(Path("unused"))
    bot_view = stored_manager(settings, repos, Mode.PAPER)  # what the bot reads
    now = now_ms()
    bot_view.update_equity(Decimal(10_000), now)
    bot_view.update_equity(Decimal(9_000), now + 1)  # -10 %: breaker and kill-switch
    login(page, live_server.url)
    page.wait_for_function("() => !document.getElementById('btn-clear-breaker').disabled")
    page.click("#btn-clear-breaker")
    page.wait_for_selector("#clear-breaker-dialog[open]")
    assert "Drawdown breaker tripped" in page.locator("#clear-breaker-trips").inner_text()
    shot(page, "07-clear-breaker-confirm", full=False)
    page.click("#clear-breaker-cancel")
    assert not page.locator("#clear-breaker-dialog").is_visible()
    assert bot_view.status()["breaker"]["tripped"] is True
    assert not repos.events.recent("paper", kind="breaker_cleared")
    page.click("#btn-clear-breaker")
    page.wait_for_selector("#clear-breaker-dialog[open]")
    page.click("#clear-breaker-confirm")
    page.wait_for_function(
        "() => document.getElementById('toast').textContent"
        ".includes('Cleared the PAPER drawdown breaker (by web:session')"
    )
    status = bot_view.status()
    assert status["breaker"]["tripped"] is False and status["kill_switch"]["tripped"] is False
    assert status["breaker"]["cleared_by"] == "web:session"
    page.wait_for_function("() => document.getElementById('btn-clear-breaker').disabled")
    assert page.problems == []


def test_risk_edit_persists_and_invalid_value_is_refused(
    page, live_server: BackgroundServer
) -> None:  # type: ignore[no-untyped-def]
    base = live_server.url
    login(page, base, "/ui/risk")
    page.wait_for_selector("#risk-max_open_positions")
    page.fill("#risk-max_open_positions", "4")
    page.fill("#risk-comment", "one more slot")
    page.click("#risk-save")
    page.wait_for_function(
        "() => document.getElementById('risk-version').textContent.startsWith('PAPER version')"
    )
    page.reload()
    page.wait_for_selector("#risk-max_open_positions")
    assert page.input_value("#risk-max_open_positions") == "4"
    source = page.locator('.field[data-field="max_open_positions"] .source').inner_text()
    assert source.startswith("source: dashboard edit v1 at ")
    version = page.locator("#risk-version").inner_text()
    # an out-of-range value: refused inline, nothing stored
    page.fill("#risk-max_position_percent", "150")
    page.click("#risk-save")
    error = page.locator('.field[data-field="max_position_percent"] .field-error')
    error.wait_for()
    assert "less than or equal to 100" in error.inner_text()
    assert page.locator("#risk-error").is_visible()
    shot(page, "05-risk-invalid")
    page.reload()
    page.wait_for_selector("#risk-max_position_percent")
    assert page.input_value("#risk-max_position_percent") == "20"
    assert page.locator("#risk-version").inner_text() == version
    stored = live_server.repos.risk_params.latest(Mode.PAPER)  # type: ignore[attr-defined]
    assert stored["params"]["max_open_positions"] == 4 and stored["source"] == "web:session"
    page.problems.clear()  # the refused PUT's 422 is logged by the browser on purpose
    shot(page, "06-risk")


def test_risk_editor_takes_and_shows_percentages_in_percent(
    page, live_server: BackgroundServer
) -> None:  # type: ignore[no-untyped-def]
    """Typing 20 in the max position field stores 0.2 (like MAX_POSITION_PERCENT) and shows
    20 %. Regression: the field showed 0.2 and refused 20 ("less than or equal to 1")."""
    base = live_server.url
    repos = live_server.repos  # type: ignore[attr-defined]
    login(page, base, "/ui/risk")
    page.wait_for_selector("#risk-max_position_percent")
    field = page.locator('.field[data-field="max_position_percent"]')
    assert field.locator(".unit").inner_text() == "%"
    assert "(%)" in field.locator("label").inner_text()
    assert "≤ 100 %" in field.locator(".hint").first.inner_text()
    shown_before = page.input_value("#risk-max_position_percent")
    assert shown_before == "20"  # the stored 0.2
    latest = repos.risk_params.latest(Mode.PAPER)
    versions = latest["version"] if latest else 0  # the module's server is shared
    for typed, stored in (("10", 0.1), ("20", 0.2)):
        page.fill("#risk-max_position_percent", typed)
        page.click("#risk-save")
        page.wait_for_function(
            "() => !document.querySelector('.field.changed') && "
            "document.getElementById('risk-version').textContent.startsWith('PAPER version')"
        )
        assert repos.risk_params.latest(Mode.PAPER)["params"]["max_position_percent"] == stored
        page.reload()
        page.wait_for_selector("#risk-max_position_percent")
        assert page.input_value("#risk-max_position_percent") == typed
        assert field.locator(".unit").inner_text() == "%"
        assert not page.locator("#risk-error").is_visible()
    assert repos.risk_params.latest(Mode.PAPER)["version"] == versions + 2
    shot(page, "06b-risk-percent")
    assert page.problems == []


def test_signal_flow_and_logs_pages(page, live_server: BackgroundServer) -> None:  # type: ignore[no-untyped-def]
    base = live_server.url
    login(page, base, "/ui/signals")
    page.wait_for_selector(".signal")
    assert page.locator(".signal").count() == 12
    page.locator(".signal details summary").first.click()
    shot(page, "07-signals")
    page.select_option('#signal-filters select[name="status"]', "rejected")
    page.wait_for_function("() => document.querySelectorAll('.signal').length === 4")
    page.goto(f"{base}/ui/logs")
    page.wait_for_selector("#logs-table tbody tr")
    page.select_option('#log-filters select[name="level"]', "error")
    page.wait_for_function("() => document.querySelectorAll('#logs-table tbody tr').length === 1")
    page.select_option('#log-filters select[name="level"]', "")
    page.wait_for_function("() => document.querySelectorAll('#logs-table tbody tr').length > 1")
    shot(page, "08-logs")
    assert page.problems == []


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/", "#flow-table tbody tr"),
        ("/ui/signals", ".signal"),
        ("/ui/risk", "#risk-max_open_positions"),
        ("/ui/logs", "#logs-table tbody tr"),
    ],
)
def test_every_page_fits_a_phone(
    page, live_server: BackgroundServer, path: str, ready: str
) -> None:  # type: ignore[no-untyped-def]
    """On a phone the page never scrolls sideways; full-page screenshots for a human."""
    page.set_viewport_size({"width": 390, "height": 844})
    login(page, live_server.url, path)
    page.wait_for_selector(ready)
    page.wait_for_timeout(300)
    name = "dashboard" if path == "/" else path.rsplit("/", 1)[-1]
    shot(page, f"09-phone-{name}")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
    hidden = page.evaluate(
        """() => [...document.querySelectorAll('.table-wrap')]
            .filter((w) => w.scrollWidth > w.clientWidth + 1)
            .map((w) => w.querySelector('table')?.id)"""
    )
    assert hidden == [], f"tables with columns off-screen on a phone: {hidden}"
    assert page.problems == []


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """A live server over a database with nothing recorded yet (a fresh install)."""
    from kmg_autotrader.storage.database import open_database
    from kmg_autotrader.storage.repositories import Repositories
    from kmg_autotrader.webui import create_app
    from tests.webui.conftest import make_settings

    root = tmp_path_factory.mktemp("empty")
    database = open_database(f"sqlite:///{root / 'web.sqlite'}")
    settings = make_settings(root / "data")
    server = BackgroundServer(create_app(settings, Repositories(database)), settings).start()
    yield server
    server.stop()
    database.dispose()


def test_fresh_install_shows_empty_states_not_empty_charts(
    page, empty_server: BackgroundServer
) -> None:  # type: ignore[no-untyped-def]
    login(page, empty_server.url)
    page.wait_for_selector("#flow-empty:not([hidden])")
    page.wait_for_selector("#confidence-empty:not([hidden])")
    for name in ("equity", "rejections", "confidence"):
        assert page.locator(f"#{name}-empty").is_visible(), name
        assert not page.locator(f"#{name}-chart").is_visible(), name
    assert page.locator("#trades-empty").is_visible()
    assert page.locator("#positions-empty").is_visible()
    assert "No model yet" in page.locator("#ml-status").inner_text()
    shot(page, "10-dashboard-empty")
    assert page.problems == []
