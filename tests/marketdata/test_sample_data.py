"""Packaged demo data: loads offline, reports its real gaps."""

from __future__ import annotations

import pytest

from kmg_autotrader.sample_data import _root, gap_report, load_sample_set


def test_btc_usdt_set_has_no_gaps() -> None:
    frames = load_sample_set()
    frame = frames["BTC/USDT"]
    assert len(frame) == 10_999 and frame.attrs["gaps"] == []
    assert frame.attrs["timeframe"] == "5m"


def test_btc_pairs_report_their_real_gaps() -> None:
    frames = load_sample_set("btc-pairs")
    assert sorted(frames) == ["ADA/BTC", "ETC/BTC", "ETH/BTC", "LTC/BTC", "XLM/BTC", "XMR/BTC"]
    assert sum(g.missing for g in frames["ADA/BTC"].attrs["gaps"]) == 40
    assert len(frames["ADA/BTC"]) + 40 == len(frames["ETH/BTC"])
    assert "ADA/BTC: 5720 candles" in gap_report(frames)
    assert (_root() / "README.md").is_file()


def test_unknown_set_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="btc-pairs"):
        load_sample_set("nope")
