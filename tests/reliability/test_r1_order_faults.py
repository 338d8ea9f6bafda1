"""R1, short and seeded: randomized faults during order placement on the local venue (Binance
and Kraken at once) through the bot's real LIVE order path and a real database, and after
every cycle the venue's books (the truth) against our records: no duplicate order, no lost
fill. The full run (1,000 faults per exchange) is ``benchmarks/reliability_r1.py``; its figures
are in the README's "Reliability" section."""

from __future__ import annotations

from decimal import Decimal

from benchmarks.reliability_r1 import API_KEY, SYMBOL, Harness, run_r1_concurrently


async def test_r1_short_run_no_duplicate_order_no_lost_fill() -> None:
    results = await run_r1_concurrently(("binance", "kraken"), faults=100, seed=11)
    for result in results:
        assert result.faults >= 100
        assert result.ok, (result.line(), result.problems[:5])
        assert result.duplicates == 0 and result.lost_fills == 0
        assert result.orders >= 50, result.line()
        # the faults that matter for duplicates did happen, on every exchange
        for kind in ("timeout_after_accept", "not_found", "server_error", "partial_fill"):
            assert result.fault_counts.get(kind, 0) > 0, (kind, result.fault_counts)
        assert result.fault_counts.get("rate_limit", 0) + result.fault_counts.get("ban", 0) > 0
        assert result.fault_counts.get("not_found_lookup", 0) > 0  # a filled order was hidden
        assert result.statuses.get("filled", 0) > 0


async def test_r1_checks_see_a_duplicate_order_and_a_lost_fill(tmp_path: object) -> None:
    harness = Harness("binance", 5, f"sqlite:///{tmp_path}/r1.sqlite")
    await harness.start()
    try:
        await harness.cycle(1)  # faults drawn, then settled: clean
        assert harness.result.ok, harness.result.problems
        (position_id,) = harness.positions
        entry = harness.store.orders_for_position(position_id)[0]
        # the same client id placed again at the venue (what a blind re-send does)
        account = harness.venue.accounts.get(API_KEY)
        assert account is not None
        book = harness.venue.market.order_book(SYMBOL, harness.clock.now_ms())
        harness.venue.accounts.place(
            account,
            SYMBOL,
            "market",
            "buy",
            Decimal("0.001"),
            client_order_id=entry.client_order_id,
            book=book,
        )
        harness.verify()
        assert harness.result.duplicates >= 1  # the order, and its intent filled twice
        assert harness.result.lost_fills >= 1  # its trade is in no fill of ours
        assert not harness.result.ok
    finally:
        await harness.stop()
