"""Builds a :class:`Bot` from the settings: the only place the stages are wired together.

PAPER uses the paper exchange (its ledger under DATA_DIR, balances mirrored to the database);
LIVE uses the ccxt exchange and is only reachable through ``ensure_live_allowed``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from kmg_autotrader import __version__
from kmg_autotrader.advisor.factory import build_advisor
from kmg_autotrader.advisor.service import Advisor
from kmg_autotrader.advisor.stage import AdvisorPipelineStage
from kmg_autotrader.alerts import AlertService
from kmg_autotrader.autopilot.advice import context_source
from kmg_autotrader.autopilot.bot import Bot, BotParts
from kmg_autotrader.autopilot.control import TradingControl
from kmg_autotrader.autopilot.health import HealthState
from kmg_autotrader.autopilot.history import CandleHistory
from kmg_autotrader.autopilot.recorder import DatabaseRecorder
from kmg_autotrader.config import Settings
from kmg_autotrader.domain import MarketInfo, Mode
from kmg_autotrader.domain.clock import Clock
from kmg_autotrader.domain.fee_edge import EdgeCosts
from kmg_autotrader.execution.fees import FeeValuer, candle_prices, fee_schedule
from kmg_autotrader.execution.manager import ExecutionConfig, ExecutionManager
from kmg_autotrader.execution.paper import PaperExchange
from kmg_autotrader.execution.ports import ExchangePort
from kmg_autotrader.execution.store_db import RepositoryStore
from kmg_autotrader.execution.tracker import PositionTracker
from kmg_autotrader.pipeline.decision import DecisionPipeline
from kmg_autotrader.pipeline.feedback import PositionFeedback
from kmg_autotrader.portfolio.balances import ExchangeBalances
from kmg_autotrader.risk.events import RiskEvent, RiskEventKind
from kmg_autotrader.risk.manager import RiskManager
from kmg_autotrader.risk.params import RiskParamsStore
from kmg_autotrader.risk.state import DbRiskStateStore
from kmg_autotrader.signals.engine import SignalEngine
from kmg_autotrader.storage.repositories import Repositories
from kmg_autotrader.vault import SCHEMA_VERSION, SnapshotWriter, VaultKind, VaultWriter
from kmg_autotrader.vault.anomalies import AnomalyLog
from kmg_autotrader.vault.versions import VersionRecorder, Versions

# Binance-like market rules for the packaged sample sets (no network to ask the exchange):
# amount step, price step, minimum amount and minimum cost (quote) per base currency.
_SAMPLE_RULES: dict[str, tuple[str, str, str, str]] = {
    "BTC/USDT": ("0.00001", "0.01", "0.00001", "5"),
    "ETH/BTC": ("0.001", "0.000001", "0.001", "0.0001"),
    "LTC/BTC": ("0.01", "0.000001", "0.01", "0.0001"),
    "ETC/BTC": ("0.01", "0.000001", "0.01", "0.0001"),
    "ADA/BTC": ("1", "0.00000001", "1", "0.0001"),
    "XLM/BTC": ("1", "0.00000001", "1", "0.0001"),
    "XMR/BTC": ("0.001", "0.000001", "0.001", "0.0001"),
}


def sample_markets(symbols: list[str], exchange_id: str) -> dict[str, MarketInfo]:
    """Market rules for the packaged sample symbols, with the exchange's default fees."""
    fees = fee_schedule(exchange_id)
    out: dict[str, MarketInfo] = {}
    for symbol in symbols:
        amount_step, price_step, min_amount, min_cost = _SAMPLE_RULES.get(
            symbol, ("0.0001", "0.00000001", "0.0001", "0.0001")
        )
        base, quote = symbol.split("/")
        out[symbol] = MarketInfo(
            symbol=symbol,
            base=base,
            quote=quote,
            amount_step=Decimal(amount_step),
            price_step=Decimal(price_step),
            min_amount=Decimal(min_amount),
            min_cost=Decimal(min_cost),
            maker_fee=fees.maker,
            taker_fee=fees.taker,
        )
    return out


@dataclass
class BotRuntime:
    """A wired bot plus the services it owns (started and stopped around a run)."""

    bot: Bot
    advisor: Advisor
    alerts: AlertService
    risk: RiskManager
    params: RiskParamsStore
    extra_tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    versions: VersionRecorder | None = None
    # undo what the runtime hooked into shared objects (the events observer), at stop
    detach: list[Callable[[], None]] = field(default_factory=list)

    async def start(self) -> None:
        """Read the LIVE balances from the exchange (raises if it cannot), start the advisor (a
        local model server starts now, not at the first review; in ``required`` mode one that
        cannot start stops the run here), then the background services (alerts worker)."""
        await self.bot.refresh_balances(strict=True)
        if self.versions is not None:
            self.versions.check(self.bot.p.clock.now_ms(), reason="start")
        await self.advisor.start()
        self.alerts.start()
        self.alerts.send(
            "system",
            title=f"[{self.bot.p.mode.value.upper()}] KMG Autotrader started",
            message=f"symbols: {', '.join(self.bot.p.markets)}",
        )

    async def stop(self) -> None:
        """Stop background services, flushing queued alerts (bounded time)."""
        for task in self.extra_tasks:
            task.cancel()
        self.alerts.send("system", message="KMG Autotrader stopped")
        await self.alerts.stop(timeout=3)
        await self.advisor.aclose()
        for undo in self.detach:
            undo()
        self.detach.clear()


def build_runtime(
    settings: Settings,
    repos: Repositories,
    *,
    mode: Mode,
    clock: Clock,
    exchange: ExchangePort,
    markets: dict[str, MarketInfo],
    paper: PaperExchange | None,
    quote: str,
    replay_advisor: bool = False,
    records_dir: Path | None = None,
) -> BotRuntime:
    """Wire every stage for one run. ``records_dir`` holds the vault and the snapshots
    (default ``DATA_DIR``; ``kmg demo`` gives its own, so it never touches the real bot's)."""
    health = HealthState(
        mode=mode.value,
        started_at=clock.now_ms(),
        timeframe_ms=settings.timeframe_ms,
        advisor_required=settings.advisor_mode == "required",
    )
    # events and alerts stored without a time carry the bot's (a demo's simulated) time
    repos.events.clock = repos.alerts.clock = clock.now_ms
    records = settings.data_dir if records_dir is None else records_dir
    vault = VaultWriter(records, clock=clock)
    alerts = AlertService.from_settings(settings, repos.alerts)
    history = CandleHistory()
    pending_flatten: list[RiskEvent] = []

    def on_risk_event(event: RiskEvent) -> None:
        repos.events.add(
            mode,
            event.kind.value,
            event.message,
            level="warning",
            source="risk",
            created_at=event.at_ms,  # the (possibly simulated) time it tripped
        )
        if event.kind in (RiskEventKind.BREAKER_TRIPPED, RiskEventKind.KILL_SWITCH):
            alerts.send(event.kind.value, breaker=event.kind.value, reason=event.message)
        if event.flatten:
            pending_flatten.append(event)

    params = RiskParamsStore.from_settings(repos.risk_params, settings, mode)
    risk = RiskManager(
        mode=mode,
        params=params,
        state=DbRiskStateStore(repos.risk_state, mode),
        decisions=None,  # the pipeline's recorder stores decisions, linked to their signal
        clock=clock,
        execution_mode=settings.execution_mode,
        on_event=on_risk_event,
    )
    store = RepositoryStore(repos, mode)
    # without a paper exchange the account is the exchange's: its balances, written to the
    # table for this mode at start, after fills and exits, and on every reconciler pass
    balances = None if paper is not None else ExchangeBalances(exchange, repos.balances, mode)
    manager = ExecutionManager(
        exchange, store, clock=clock, config=ExecutionConfig(execution_mode=settings.execution_mode)
    )
    tracker = PositionTracker(manager)
    # the fee gate reads the risk limits in effect, so it and the risk manager agree
    engine = SignalEngine.from_settings(
        settings, costs=lambda: EdgeCosts.of_params(params.current()[1])
    )
    advisor = build_advisor(
        settings,
        repos,
        clock,
        mode=mode,
        replay=replay_advisor,
        audit_sink=None if replay_advisor else _advisor_sink(vault),
    )
    health.advisor_probe = advisor.status  # live: ok | failing | budget_exhausted | off
    stage = AdvisorPipelineStage(
        advisor,
        context_source(
            repos=repos,
            mode=mode,
            history=history,
            timeframe_ms=settings.timeframe_ms,
            risk_status=risk.status,
        ),
    )
    recorder = DatabaseRecorder(repos, mode, vault=vault)
    feedback = PositionFeedback(risk, store)
    bot_ref: list[Bot] = []

    def portfolio(now_ms: int) -> Any:
        return bot_ref[0].portfolio_state(now_ms)

    advisor_mode = "replay" if replay_advisor else advisor.mode
    pipeline = DecisionPipeline(
        risk,
        manager,
        portfolio,
        advisor=stage if advisor_mode != "off" else None,
        advisor_mode=advisor_mode,  # type: ignore[arg-type]
        recorder=recorder,
        feedback=feedback,
    )
    bot = Bot(
        BotParts(
            mode=mode,
            quote=quote,
            clock=clock,
            repos=repos,
            engine=engine,
            pipeline=pipeline,
            manager=manager,
            tracker=tracker,
            risk=risk,
            markets=markets,
            control=TradingControl(repos.risk_state, mode),
            health=health,
            paper=paper,
            alerts=alerts,
            vault=vault,
            snapshots=SnapshotWriter(records, clock=clock),
            settings_view=settings.masked(),
            advisor_status=advisor.status,
            history=history,
            feedback=feedback,
            balances=balances,
        )
    )
    bot.pending_flatten = pending_flatten
    bot_ref.append(bot)
    versions = VersionRecorder(
        vault, lambda: _versions(settings, mode, engine, params, advisor, advisor_mode)
    )
    # the summaries' next run times live in the bot's database: a restart keeps them
    bot.jobs.persist(repos.db.engine, namespace=mode.value)
    # a risk-limit edit while running is a version change too: checked with each snapshot
    bot.jobs.watchers.append(lambda now: versions.check(now))
    detach = [repos.events.observe(AnomalyLog(vault, mode.value))]
    manager.orders.fee_values = _fee_valuer(settings, repos, mode, bot.last_prices)
    logger.info(
        "bot wired: {} {} on {} ({} symbols), advisor {}, execution {}",
        mode.value.upper(),
        settings.strategy,
        settings.exchange,
        len(markets),
        advisor_mode,
        settings.execution_mode.value,
    )
    return BotRuntime(
        bot=bot,
        advisor=advisor,
        alerts=alerts,
        risk=risk,
        params=params,
        versions=versions,
        detach=detach,
    )


def _fee_valuer(
    settings: Settings, repos: Repositories, mode: Mode, last_prices: dict[str, Decimal]
) -> FeeValuer:
    """Values fees paid in a third currency (BNB) at the fill's time: the bot's last price of
    that currency, else the stored candles; an unvalued fee is recorded as an event."""
    from kmg_autotrader.storage.candle_store import CandleStore

    def unvalued(key: str, fee: Decimal, currency: str, detail: str) -> None:
        repos.events.add(
            mode,
            "fee_unvalued",
            f"fee {fee} {currency} of fill {key} is not in the PnL: {detail}",
            level="warning",
            source="execution",
            details={"fill": key, "fee": fee, "currency": currency},
        )

    candles = candle_prices(CandleStore(settings.data_dir), settings.exchange, settings.timeframe)
    return FeeValuer(last_prices=last_prices, candles=candles, on_unvalued=unvalued)


def _advisor_sink(vault: VaultWriter) -> Callable[[dict[str, Any]], None]:
    """Advisor calls into the run's vault, filed under the day of the call."""

    def sink(record: dict[str, Any]) -> None:
        vault.try_append(VaultKind.ADVISOR_CALLS, record, ts_ms=record.get("created_at"))

    return sink


def _versions(
    settings: Settings,
    mode: Mode,
    engine: SignalEngine,
    params: RiskParamsStore,
    advisor: Advisor,
    advisor_mode: str,
) -> Versions:
    """What the bot trades with: code, record format, strategy (and a hash of its
    parameters), risk-limit version, advisor model and prompts."""
    strategy_params = engine.params.model_dump_json().encode()
    risk_version, _ = params.current()
    status = advisor.status()
    return {
        "app": __version__,
        "vault_schema": SCHEMA_VERSION,
        "mode": mode.value,
        "exchange": settings.exchange,
        "timeframe": settings.timeframe,
        "execution_mode": settings.execution_mode.value,
        "strategy": settings.strategy,
        "strategy_params": hashlib.sha256(strategy_params).hexdigest()[:16],
        "risk_params_version": risk_version,
        "advisor_mode": advisor_mode,
        "advisor_model": status.get("model") if advisor_mode != "off" else None,
        "advisor_prompt_version": status.get("prompt_version") if advisor_mode != "off" else None,
    }
