"""Estimated cost of a call from its token counts (USD per million tokens, list prices)."""

from __future__ import annotations

# (input, output) USD per 1M tokens. Longest prefix wins, so "gpt-4o-mini-2024-07-18" matches.
_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
}


def estimate_cost_usd(
    model: str, prompt_tokens: int | None, completion_tokens: int | None, *, local: bool = False
) -> float | None:
    """USD estimate; 0 for a local model, None when the model's price or the usage is unknown."""
    if local:
        return 0.0
    if prompt_tokens is None and completion_tokens is None:
        return None
    name = model.lower().rsplit("/", 1)[-1]
    match = max((k for k in _PRICES if name.startswith(k)), key=len, default=None)
    if match is None:
        return None
    price_in, price_out = _PRICES[match]
    return ((prompt_tokens or 0) * price_in + (completion_tokens or 0) * price_out) / 1_000_000
