"""`kmg demo`'s default start and speed (light: the CLI's option defaults read them).

Measured on the packaged sets (issue 19: replayed from candle 0 at 1 candle/s, the first
btc-usdt trade came at candle 2,977, some 50 minutes in). From these starts, the candles
before warming the strategy up, the default strategy trades at once:

* btc-usdt from candle 3,630: an entry fills on the replay's 22nd candle and closes (take
  profit) on its 33rd; at 3 candles/s that is about 7 s and 11 s into the replay.
* btc-pairs from candle 1,000: entries on the 14th and 27th candles, the first exit on the
  32nd.
"""

from __future__ import annotations

DEMO_START: dict[str, int] = {"btc-usdt": 3630, "btc-pairs": 1000}
DEMO_SPEED = 3.0  # candles per second (per symbol): a trade every ~2 minutes on btc-usdt
