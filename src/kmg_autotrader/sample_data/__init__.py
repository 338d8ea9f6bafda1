"""Real 5m candles packaged for ``kmg demo`` (no network). Provenance: ``README.md`` here.

Sets:

* ``btc-usdt`` — BTC/USDT, 10,999 candles, 2023-01-02 → 2023-02-09, no gaps.
* ``btc-pairs`` — ETH, LTC, ETC, ADA, XLM, XMR against BTC, 2018-01-10 → 2018-01-30; some have
  real gaps (ADA/BTC misses 40 candles).

Frames use the candle store's columns (``timestamp`` int64 UTC epoch ms + float64 OHLCV).
Each frame's ``attrs`` carries ``symbol``, ``timeframe`` and ``gaps`` (a list of
:class:`~kmg_autotrader.storage.candle_store.Gap`) so a consumer never treats a hole as one
candle.

pandas and the candle store are imported on first use, so reading :data:`SAMPLE_SETS` (the
``kmg demo --set`` help text) does not load them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from kmg_autotrader.storage.candle_store import Gap

TIMEFRAME = "5m"
_TF_MS = 300_000
_PAIRS = ("ETH", "LTC", "ETC", "ADA", "XLM", "XMR")
SAMPLE_SETS: dict[str, dict[str, str]] = {
    "btc-usdt": {"BTC/USDT": "btc_usdt/BTCUSDT_5m_20230102_20230209.csv"},
    "btc-pairs": {f"{base}/BTC": f"btc_pairs/{base}_BTC-5m.feather" for base in _PAIRS},
}
DEFAULT_SET = "btc-usdt"


def _root() -> Path:
    return Path(str(resources.files(__name__)))


def _read(relative: str) -> pd.DataFrame:
    import pandas as pd

    from kmg_autotrader.storage.candle_store import normalize_frame, validate_frame

    path = _root() / relative
    if path.suffix == ".feather":
        raw = pd.read_feather(path)
        raw["timestamp"] = raw["date"].dt.as_unit("ms").astype("int64")
    else:
        raw = pd.read_csv(path)
    frame = normalize_frame(raw)
    validate_frame(frame, str(path))
    return frame


def load_sample_set(name: str = DEFAULT_SET) -> dict[str, pd.DataFrame]:
    """Candles of a packaged set, keyed by unified symbol; gaps in ``frame.attrs["gaps"]``."""
    from kmg_autotrader.storage.candle_store import find_gaps

    try:
        files = SAMPLE_SETS[name]
    except KeyError:
        raise ValueError(
            f"unknown sample set {name!r}; choose one of {', '.join(SAMPLE_SETS)}"
        ) from None
    out: dict[str, pd.DataFrame] = {}
    for symbol, relative in files.items():
        frame = _read(relative)
        frame.attrs["symbol"] = symbol
        frame.attrs["timeframe"] = TIMEFRAME
        frame.attrs["gaps"] = find_gaps(frame["timestamp"], _TF_MS)
        out[symbol] = frame
    return out


def sample_gaps(frames: dict[str, pd.DataFrame]) -> dict[str, list[Gap]]:
    """Gaps per symbol of loaded frames (recomputed, so it also works on sliced frames)."""
    from kmg_autotrader.storage.candle_store import find_gaps

    return {symbol: find_gaps(frame["timestamp"], _TF_MS) for symbol, frame in frames.items()}


def gap_report(frames: dict[str, pd.DataFrame]) -> str:
    """Human-readable gap report, one line per gap (or per clean symbol)."""
    from kmg_autotrader.storage.candle_store import fmt_ms

    lines: list[str] = []
    for symbol, gaps in sample_gaps(frames).items():
        frame = frames[symbol]
        span = (
            f"{fmt_ms(int(frame['timestamp'].to_numpy()[0]))} → "
            f"{fmt_ms(int(frame['timestamp'].to_numpy()[-1]))}"
            if len(frame)
            else "empty"
        )
        if not gaps:
            lines.append(f"{symbol}: {len(frame)} candles, {span}, no gaps")
            continue
        missing = sum(g.missing for g in gaps)
        lines.append(
            f"{symbol}: {len(frame)} candles, {span}, {len(gaps)} gap(s), {missing} missing"
        )
        lines.extend(f"  gap {gap}" for gap in gaps)
    return "\n".join(lines)


__all__ = [
    "DEFAULT_SET",
    "SAMPLE_SETS",
    "TIMEFRAME",
    "gap_report",
    "load_sample_set",
    "sample_gaps",
]
