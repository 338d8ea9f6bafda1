"""The dashboard in Debian's Chromium after the bot records something (issue 19 item 7): the
panels follow the records without a reload, closed trades page past the first 15, the Logs page
lists pause/resume/risk edits, the login page keeps the token file's path to itself."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from kmg_autotrader.domain import (
    EquityPoint,
    Mode,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Regime,
    Side,
    Signal,
)
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.webui import BackgroundServer, create_app
from tests.webui.conftest import AUTH, TOKEN, make_settings
from tests.webui.seed import START, STEP, seed

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

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


def _server(root, extra_closed: int = 0) -> tuple[BackgroundServer, Repositories]:  # type: ignore[no-untyped-def]
    database = open_database(f"sqlite:///{root / 'web.sqlite'}")
    repos = Repositories(database)
    seed(repos)
    for n in range(extra_closed):  # more round trips than one page holds
        opened = START + n * STEP
        position_id = repos.positions.open(
            Position(Mode.PAPER, "SOL/USDT", Decimal("1"), Decimal("150"), opened)
        )
        repos.positions.close(
            Mode.PAPER,
            position_id,
            closed_at=opened + STEP,
            exit_price=Decimal("151"),
            exit_reason="signal",
            realized_pnl=Decimal("1"),
            fees_paid=Decimal("0.1"),
        )
    settings = make_settings(root / "data")
    # a stream long enough that it does not reconnect (and lose a poll) during a test
    app = create_app(settings, repos, poll_seconds=0.2, stream_max_seconds=120.0)
    return BackgroundServer(app, settings, port=0).start(), repos


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BackgroundServer, Repositories]]:
    live, repos = _server(tmp_path_factory.mktemp("live19"))
    yield live, repos
    live.stop()
    repos.db.dispose()


@pytest.fixture(scope="module")
def many_trades(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BackgroundServer, Repositories]]:
    live, repos = _server(tmp_path_factory.mktemp("paging19"), extra_closed=15)  # 20 in all
    yield live, repos
    live.stop()
    repos.db.dispose()


@pytest.fixture
def page(browser) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A fresh page that records console errors and failed requests."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.problems = []  # type: ignore[attr-defined]
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda exc: page.problems.append(str(exc)))
    yield page
    context.close()


def login(page, base: str, next_path: str = "/") -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}{next_path}")
    page.fill("#token", TOKEN)
    page.click("#login-submit")
    page.wait_for_url(f"{base}{next_path}")


def rows(page, table: str) -> int:  # type: ignore[no-untyped-def]
    return int(page.locator(f"#{table} tbody tr").count())


def test_an_entry_updates_positions_trades_and_metrics_without_a_reload(page, server) -> None:  # type: ignore[no-untyped-def]
    live, repos = server
    login(page, live.url)
    page.wait_for_selector("#trades-table tbody tr")
    page.wait_for_function("() => document.getElementById('m-trades').textContent.startsWith('5 ')")
    assert rows(page, "positions-table") == 1 and rows(page, "trades-table") == 5
    page.wait_for_timeout(800)  # the stream is connected and the watcher has its markers
    store = RepositoryStore(repos, Mode.PAPER)  # what the bot's execution manager writes through
    t = START + 300 * STEP

    def next_candle(at: int, equity: str) -> None:
        """The candle's equity point and the next candle's signal (the bot records both)."""
        repos.equity.add(EquityPoint(Mode.PAPER, at, Decimal(equity), Decimal(0), Decimal(0)))
        repos.signals.add(
            Mode.PAPER,
            Signal("ETH/USDT", "5m", at, Side.BUY, "ema_cross", 0.6, 3100.0, "n", Regime.CHOP),
            strategy="default",
            passed=False,
            rejected_by="regime",
            created_at=at,
        )

    # an entry: order sent, filled, position opened; then the equity point and the next signal
    store.add_order(
        Order(
            Mode.PAPER,
            "kmg-e-1",
            "BTC/USDT",
            Side.BUY,
            OrderType.MARKET,
            Decimal("0.02"),
            OrderStatus.PENDING,
            t,
        ),
    )
    store.update_order(
        "kmg-e-1", status=OrderStatus.FILLED, filled=Decimal("0.02"), average_price=Decimal("61000")
    )
    store.open_position(
        Position(
            Mode.PAPER,
            "BTC/USDT",
            Decimal("0.02"),
            Decimal("61000"),
            t,
            stop_loss=Decimal("60000"),
            take_profit=Decimal("63000"),
        )
    )
    next_candle(t, "10777")
    # no reload: the positions and metrics panels follow
    page.wait_for_function(
        """() => [...document.querySelectorAll('#positions-table tbody tr td:first-child')]
            .map((td) => td.textContent).sort().join() === 'BTC/USDT,ETH/USDT'""",
        timeout=10_000,
    )
    page.wait_for_function(
        "() => document.getElementById('m-equity').textContent === '10,777.00'", timeout=10_000
    )
    # an exit on a later candle: the ETH position is sold and closed, then the candle's records
    (eth,) = store.open_positions("ETH/USDT")
    store.add_order(
        Order(
            Mode.PAPER,
            "kmg-x-1",
            "ETH/USDT",
            Side.SELL,
            OrderType.MARKET,
            Decimal("0.5"),
            OrderStatus.FILLED,
            t + STEP,
            filled=Decimal("0.5"),
            average_price=Decimal("3100"),
        ),
        position_id=eth.id,
    )
    store.close_position(
        eth.id or 0,
        closed_at=t + STEP,
        exit_price=Decimal("3100"),
        exit_reason="signal",
        realized_pnl=Decimal("50"),
        fees_paid=Decimal("1"),
    )
    time.sleep(0.25)  # the watcher polls every 0.2 s: the candle's records land a poll later
    next_candle(t + STEP, "10830")
    page.wait_for_function(
        "() => document.querySelectorAll('#trades-table tbody tr').length === 6", timeout=10_000
    )
    page.wait_for_function(
        "() => document.getElementById('m-trades').textContent.startsWith('6 trades')",
        timeout=10_000,
    )
    assert page.locator("#trades-table tbody tr td").first.inner_text() == "ETH/USDT"
    page.wait_for_function(
        """() => [...document.querySelectorAll('#positions-table tbody tr td:first-child')]
            .map((td) => td.textContent).join() === 'BTC/USDT'""",
        timeout=10_000,
    )
    assert page.problems == []


def test_closed_trades_page_past_the_first_fifteen(page, many_trades) -> None:  # type: ignore[no-untyped-def]
    live, _ = many_trades
    login(page, live.url)
    page.wait_for_selector("#trades-table tbody tr")
    assert rows(page, "trades-table") == 15
    assert page.locator("#trades-pager").is_visible()
    assert page.locator("#trades-prev").is_disabled()
    assert page.locator("#trades-page").inner_text() == "1–15"
    first_page = page.locator("#trades-table tbody").inner_text()
    page.click("#trades-next")
    page.wait_for_function("() => document.getElementById('trades-page').textContent === '16–20'")
    assert rows(page, "trades-table") == 5
    assert page.locator("#trades-next").is_disabled()
    # the oldest round trips: the seeded SOL ones opened first
    cells = page.locator("#trades-table tbody tr td:first-child").all_inner_texts()
    assert cells == ["SOL/USDT"] * 5
    page.click("#trades-prev")
    page.wait_for_function("() => document.getElementById('trades-page').textContent === '1–15'")
    assert page.locator("#trades-table tbody").inner_text() == first_page
    assert page.problems == []


def test_a_short_trade_list_shows_no_pager(page, server) -> None:  # type: ignore[no-untyped-def]
    live, _ = server
    login(page, live.url)
    page.wait_for_selector("#trades-table tbody tr")
    page.wait_for_timeout(200)
    assert not page.locator("#trades-pager").is_visible()


def test_logs_page_lists_pause_resume_and_risk_edits(page, server) -> None:  # type: ignore[no-untyped-def]
    live, _ = server
    login(page, live.url)
    page.wait_for_function("() => document.querySelector('#health-list dt') !== null")
    page.click("#btn-pause")
    page.wait_for_selector("#paused-badge:not([hidden])")
    page.click("#btn-resume")
    page.wait_for_selector("#paused-badge", state="hidden")
    changed = httpx.put(
        f"{live.url}/risk",
        headers=AUTH,
        json={"changes": {"max_open_positions": 5}, "comment": "room for one more"},
    )
    assert changed.status_code == 200, changed.text
    page.goto(f"{live.url}/ui/logs?kind=event")
    page.wait_for_selector("#logs-table tbody tr")
    titles = page.locator("#logs-table tbody tr summary").all_inner_texts()
    assert titles[:3] == [
        "risk_params_changed (web:token)",
        "resumed (web:session)",
        "paused (web:session)",
    ], titles
    text = page.locator("#logs-table tbody").inner_text()
    assert "max_open_positions = 5" in text and "room for one more" in text
    assert page.problems == []


def test_login_page_does_not_show_where_the_token_is(page, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kmg_autotrader.config import Settings

    database = open_database(f"sqlite:///{tmp_path / 'web.sqlite'}")
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    live = BackgroundServer(create_app(settings, Repositories(database)), settings, port=0).start()
    try:
        page.goto(f"{live.url}/login")
        text = page.locator("main, body").first.inner_text()
        html = page.content()
        assert "one-time token" in text and "terminal" in text
        assert str(tmp_path) not in html and "web_api_token" not in html
    finally:
        live.stop()
        database.dispose()
