"""Backtester: the live pipeline replayed on stored candles, event by event."""
