"""Every API endpoint answers from the records, filtered on the current mode."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from kmg_autotrader.domain import EquityPoint, Mode
from kmg_autotrader.storage.repositories import Repositories
from tests.webui.conftest import AUTH
from tests.webui.seed import START, STEP, seed

pytestmark = pytest.mark.db


def get(client: TestClient, path: str) -> dict:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_metrics_from_equity_and_closed_trades(client: TestClient, seeded: dict) -> None:
    m = get(client, "/metrics")
    assert m["mode"] == "paper"
    assert m["initial_equity"] == pytest.approx(10_000.0)
    assert m["trades"] == 5 and m["wins"] == 3 and m["losses"] == 2
    assert m["win_rate"] == pytest.approx(0.6)
    assert m["profit_factor"] == pytest.approx(76.5 / 24.5)
    assert m["fees_paid"] == pytest.approx(6.0)
    assert m["realized_pnl"] == pytest.approx(52.0)
    assert m["open_positions"] == 1
    assert 0 < m["max_drawdown"] < 0.1
    assert m["total_return"] == pytest.approx(m["equity"] / m["initial_equity"] - 1)


def test_metrics_without_records(client: TestClient) -> None:
    m = get(client, "/metrics")
    assert m["equity"] is None and m["trades"] == 0 and m["profit_factor"] is None


def test_live_records_never_show_in_paper(client: TestClient, repos: Repositories) -> None:
    seed(repos, Mode.LIVE, points=10)
    assert get(client, "/metrics")["equity_points"] == 0
    assert get(client, "/signals")["items"] == []
    assert get(client, "/trades")["items"] == []
    assert get(client, "/positions")["positions"] == []
    assert get(client, "/equity")["points"] == []
    assert get(client, "/logs")["items"] == []


def test_equity_downsampled_keeps_order_and_range(client: TestClient, seeded: dict) -> None:
    full = get(client, "/equity?max_points=5000")
    assert full["total_points"] == 288 and not full["downsampled"]
    small = get(client, "/equity?max_points=40")
    times = [p["t"] for p in small["points"]]
    assert small["downsampled"] and 2 <= len(times) <= 40
    assert times == sorted(times)
    assert times[-1] == full["points"][-1]["t"]  # the newest point is always shown
    window = get(client, f"/equity?since={START + 10 * STEP}&until={START + 19 * STEP}")
    assert len(window["points"]) == 10


def test_positions_and_balances(client: TestClient, seeded: dict) -> None:
    data = get(client, "/positions")
    (position,) = data["positions"]
    assert position["symbol"] == "ETH/USDT"
    assert position["cost"] == pytest.approx(1500.0)
    assert position["stop_loss"] == pytest.approx(2900.0)
    assert {b["currency"] for b in data["balances"]} == {"USDT", "ETH"}


def test_trades_newest_first_with_return(client: TestClient, seeded: dict) -> None:
    data = get(client, "/trades")
    closed = [t["closed_at"] for t in data["items"]]
    assert closed == sorted(closed, reverse=True) and len(closed) == 5
    first = data["items"][0]
    assert first["return_pct"] == pytest.approx(25.5 / 600 * 100)
    assert first["exit_reason"] == "take_profit"


def test_signals_carry_the_whole_decision_chain(client: TestClient, seeded: dict) -> None:
    items = {s["id"]: s for s in get(client, "/signals?limit=200")["items"]}
    assert len(items) == 12
    stages = {s["stage"] for s in items.values()}
    assert stages == {"filtered", "advisor_vetoed", "risk_rejected", "ordered"}
    filtered = items[seeded["signal0"]]
    assert filtered["rejected_by"] == "regime" and not filtered["passed"]
    assert filtered["trace"][1] == {
        "name": "regime",
        "passed": False,
        "reason": "chop: no trade in a choppy market",
        "details": {},
    }
    ordered = items[seeded["signal2"]]
    assert ordered["advisor"]["action"] == "buy" and ordered["risk"]["approved"]
    assert ordered["orders"][0]["status"] == "filled"
    assert items[seeded["signal4"]]["stage"] == "advisor_vetoed"
    assert items[seeded["signal8"]]["risk"]["reason_code"] == "MAX_POSITIONS"


def test_signals_filters(client: TestClient, seeded: dict) -> None:
    rejected = get(client, "/signals?status=rejected&limit=200")["items"]
    assert rejected and all(not s["passed"] for s in rejected)
    passed = get(client, "/signals?status=passed&limit=200")["items"]
    assert passed and all(s["passed"] for s in passed)
    eth = get(client, "/signals?symbol=ETH/USDT&limit=200")["items"]
    assert eth and {s["symbol"] for s in eth} == {"ETH/USDT"}


def test_rejections_counts_and_latest(client: TestClient, seeded: dict) -> None:
    data = get(client, "/signals/rejections")
    assert data["filter_counts"] == {"regime": 4}
    assert data["advisor_counts"] == {"hold": 1}
    assert data["risk_counts"] == {"MAX_POSITIONS": 1}
    assert {r["stage"] for r in data["latest"]} == {"filter", "advisor", "risk"}
    stamps = [r["timestamp"] for r in data["latest"]]
    assert stamps == sorted(stamps, reverse=True)


def test_advisor_confidence_history_oldest_first(client: TestClient, seeded: dict) -> None:
    points = get(client, "/advisor/confidence")["points"]
    assert len(points) == 8
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert all(0 <= p["confidence"] <= 1 for p in points)


def test_ml_status_no_model_then_ready(client: TestClient, repos: Repositories) -> None:
    assert get(client, "/ml/status")["status"] == "no_model"
    assert "No model yet" in get(client, "/ml/status")["message"]
    repos.ml_models.add(
        name="lgbm",
        version="2024-06-02",
        path="models/lgbm.txt",
        trained_at=START,
        metrics={"accuracy": 0.61, "auc": 0.64},
    )
    data = get(client, "/ml/status")
    assert data["status"] == "ready" and data["accuracy"] == pytest.approx(0.61)
    assert data["trained_at"] == START and data["name"] == "lgbm"


def test_logs_merge_every_source(client: TestClient, seeded: dict) -> None:
    data = get(client, "/logs?limit=200")
    kinds = {item["kind"] for item in data["items"]}
    assert kinds == {"advisor", "order", "event", "alert"}
    times = [item["time"] for item in data["items"]]
    assert times == sorted(times, reverse=True)
    errors = get(client, "/logs?kind=event&level=error")["items"]
    assert [e["message"] for e in errors] == ["timeout talking to the exchange"]
    btc = get(client, "/logs?symbol=BTC/USDT&limit=200")["items"]
    assert btc and {i["symbol"] for i in btc} == {"BTC/USDT"}
    advisor = get(client, "/logs?kind=advisor&limit=1")["items"][0]
    assert advisor["details"]["model"] == "gpt-4o-mini" and advisor["details"]["raw_answer"]


def test_health_public_summary_and_authenticated_details(
    client: TestClient, repos: Repositories
) -> None:
    public = client.get("/health")
    assert public.status_code == 200
    assert set(public.json()) == {"status", "mode", "time", "version"}
    assert public.json()["status"] == "unknown"  # nothing recorded yet
    repos.equity.add(EquityPoint(Mode.PAPER, START, Decimal(10_000), Decimal(10_000), Decimal(0)))
    repos.events.add(Mode.PAPER, "exchange_error", "timeout", level="error")
    detail = get(client, "/health")
    assert detail["feed_status"] == "stale" and detail["status"] == "degraded"
    assert detail["last_error"] == "timeout" and detail["paused"] is False


def test_health_from_an_injected_provider(web_settings, repos: Repositories) -> None:
    from kmg_autotrader.webui import create_app

    def provider() -> dict:
        return {"status": "ok", "feed_status": "websocket", "last_candle_age_s": 3.0, "x": 1}

    app = create_app(web_settings, repos, health_provider=provider)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        data = get(client, "/health")
    assert data["status"] == "ok" and data["feed_status"] == "websocket" and "x" not in data


def test_control_pause_resume_flatten_recorded(client: TestClient, repos: Repositories) -> None:
    assert get(client, "/control")["paused"] is False
    paused = client.post("/control/pause", headers=AUTH).json()
    assert paused["paused"] is True and paused["action"] == "pause"
    assert repos.risk_state.get(Mode.PAPER, "control")["by"] == "web:token"
    assert get(client, "/health")["paused"] is True
    resumed = client.post("/control/resume", headers=AUTH).json()
    assert resumed["paused"] is False
    refused = client.post("/control/flatten", headers=AUTH, json={"confirm": False})
    assert refused.status_code == 422
    assert not repos.events.recent(Mode.PAPER, kind="flatten_requested")
    done = client.post("/control/flatten", headers=AUTH, json={"confirm": True}).json()
    assert done["ok"] and done["paused"] and "kmg flatten" in done["message"]
    (event,) = repos.events.recent(Mode.PAPER, kind="flatten_requested")
    assert event["source"] == "web:token"
    # without the bot the confirmation says what will (and will not) happen
    dialog = client.get("/", headers=AUTH).text
    assert "cannot trade" in dialog and "kmg flatten" in dialog


def test_control_uses_an_injected_async_controller(web_settings, repos: Repositories) -> None:
    from kmg_autotrader.webui import create_app

    class Bot:
        def __init__(self) -> None:
            self.paused = False
            self.calls: list[tuple[str, str]] = []

        async def pause(self, source: str) -> dict:
            self.paused = True
            self.calls.append(("pause", source))
            return {"message": "paused by the bot"}

        def resume(self, source: str) -> dict:
            self.paused = False
            return {}

        async def flatten(self, source: str) -> dict:
            self.calls.append(("flatten", source))
            return {"ok": True, "message": "closed 1 position", "closed": [7]}

        def is_paused(self) -> bool:
            return self.paused

    bot = Bot()
    app = create_app(web_settings, repos, controller=bot)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.post("/control/pause", headers=AUTH).json()["message"] == "paused by the bot"
        result = client.post("/control/flatten", headers=AUTH, json={"confirm": True}).json()
        dialog = client.get("/", headers=AUTH).text
    assert result["summary"]["closed"] == [7]
    assert bot.calls == [("pause", "web:token"), ("flatten", "web:token")]
    assert "closes every PAPER position at market" in dialog and "cannot trade" not in dialog


def test_unexpected_error_is_a_clean_500(web_settings, repos: Repositories) -> None:
    from kmg_autotrader.webui import create_app

    class Broken:
        def is_paused(self) -> bool:
            raise RuntimeError("boom with secret " + web_settings.api_token.get_secret_value())

    app = create_app(web_settings, repos, controller=Broken())  # type: ignore[arg-type]
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        response = client.get("/control", headers=AUTH)
    assert response.status_code == 500
    assert response.json()["detail"].startswith("internal error")


def test_metrics_follow_new_records(client: TestClient, repos: Repositories) -> None:
    repos.equity.add(EquityPoint(Mode.PAPER, START, Decimal(10_000), Decimal(10_000), Decimal(0)))
    assert get(client, "/metrics")["total_return"] == 0
    repos.equity.add(
        EquityPoint(Mode.PAPER, START + STEP, Decimal(11_000), Decimal(11_000), Decimal(0))
    )
    assert get(client, "/metrics")["total_return"] == pytest.approx(0.1)


def test_records_as_the_execution_layer_writes_them(
    client: TestClient, repos: Repositories
) -> None:
    """A closed position keeps amount 0 and orders carry no risk decision id: the trade's size
    comes from its buy orders and the signal's order is found by symbol, side and time."""
    from kmg_autotrader.domain import (
        Order,
        OrderStatus,
        OrderType,
        Position,
        Regime,
        RiskDecision,
        Side,
        Signal,
    )

    ts = START + 10 * STEP
    signal = Signal(
        "ETH/BTC", "5m", ts, Side.BUY, "sma_cross", 0.8, 0.05, "cross", Regime.TREND_UP, {}
    )
    signal_id = repos.signals.add(Mode.PAPER, signal, strategy="default", passed=True)
    decision = RiskDecision(True, "APPROVED", "buy 2 ETH", "ETH/BTC", Side.BUY, ts)
    repos.risk_decisions.add(Mode.PAPER, decision, signal_id=signal_id)
    position_id = repos.positions.open(
        Position(Mode.PAPER, "ETH/BTC", Decimal(2), Decimal("0.05"), ts)
    )
    for n, (side, purpose, at) in enumerate(
        [(Side.BUY, "entry", ts + 60_000), (Side.SELL, "take_profit", ts + 20 * STEP)]
    ):
        order = Order(
            Mode.PAPER,
            f"kmg-x-{n}",
            "ETH/BTC",
            side,
            OrderType.MARKET,
            Decimal(2),
            OrderStatus.FILLED,
            at,
            filled=Decimal(2),
            average_price=Decimal("0.05"),
            purpose=purpose,
        )
        repos.orders.add(order, position_id=position_id)
    repos.positions.update(Mode.PAPER, position_id, amount=Decimal(0))
    repos.positions.close(
        Mode.PAPER,
        position_id,
        closed_at=ts + 20 * STEP,
        exit_price=Decimal("0.051"),
        exit_reason="take_profit",
        realized_pnl=Decimal("0.002"),
        fees_paid=Decimal("0.0002"),
    )
    (trade,) = get(client, "/trades")["items"]
    assert trade["amount"] == pytest.approx(2)
    assert trade["return_pct"] == pytest.approx(2.0)
    (item,) = get(client, "/signals")["items"]
    assert item["stage"] == "ordered"
    assert [o["client_order_id"] for o in item["orders"]] == ["kmg-x-0"]
    assert get(client, "/metrics")["trades"] == 1
