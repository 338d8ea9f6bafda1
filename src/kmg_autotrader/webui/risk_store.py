"""The risk-parameter store the dashboard edits (the risk package owns the rules and validation)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from kmg_autotrader.config import Settings
from kmg_autotrader.storage.repositories import Repositories


class RiskStore(Protocol):
    """``current()``, ``effective()`` and ``update()`` of
    :class:`kmg_autotrader.risk.params.RiskParamsStore` (scoped to one mode)."""

    def current(self) -> tuple[int, Any]:
        """The newest version number and its parameters (a pydantic model)."""
        ...

    def effective(self, env: Mapping[str, str] | None = None) -> Any:
        """Each parameter in effect with its source (an ``EffectiveParams``)."""
        ...

    def update(self, changes: dict[str, Any], *, source: str, comment: str = "") -> tuple[int, Any]:
        """Validate and store a change; raise an error carrying ``.errors`` when invalid."""
        ...


def default_risk_store(settings: Settings, repos: Repositories) -> RiskStore:
    """The database-backed store of the dashboard's mode, defaults from the settings."""
    from kmg_autotrader.risk.params import RiskParamsStore

    return RiskParamsStore.from_settings(repos.risk_params, settings, settings.trading_mode)


def params_model(store: RiskStore) -> type[BaseModel] | None:
    """The pydantic model class of the store's parameters (for the editor's field list)."""
    _, params = store.current()
    return type(params) if isinstance(params, BaseModel) else None


def field_errors(exc: Exception) -> list[dict[str, str]] | None:
    """The ``[{"field", "message"}]`` list of a validation error from the store, else None."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        errors = errors()  # a pydantic ValidationError
        return [
            {
                "field": ".".join(str(p) for p in e.get("loc", ())) or "__root__",
                "message": str(e.get("msg", "invalid value")).removeprefix("Value error, "),
            }
            for e in errors
        ]
    if isinstance(errors, list) and all(isinstance(e, dict) for e in errors):
        return [
            {"field": str(e.get("field", "")), "message": str(e.get("message", ""))} for e in errors
        ]
    return None
