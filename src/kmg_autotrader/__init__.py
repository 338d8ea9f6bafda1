"""KMG Autotrader: an autonomous spot-crypto trading bot."""

__version__ = "0.1.0"
