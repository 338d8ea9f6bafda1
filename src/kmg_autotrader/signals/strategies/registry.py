"""Find a strategy by the ``STRATEGY`` setting: a built-in name, a ``.py`` file or ``module:Class``.

* ``default`` / ``sma_cross_rsi`` — built-ins (and anything registered with
  :func:`register_strategy`);
* ``/path/to/my_strategy.py`` or ``/path/to/file.py:MyStrategy`` — a file of your own; without
  ``:Class`` the file must define exactly one :class:`Strategy` subclass;
* ``my_package.my_module:MyStrategy`` — an importable module.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from loguru import logger

from kmg_autotrader.signals.params import SignalParams
from kmg_autotrader.signals.strategies.base import Strategy
from kmg_autotrader.signals.strategies.default import DefaultStrategy
from kmg_autotrader.signals.strategies.sma_cross_rsi import SmaCrossRsi

_REGISTRY: dict[str, type[Strategy]] = {}

S = TypeVar("S", bound=type[Strategy])


class StrategyLoadError(ValueError):
    """The ``STRATEGY`` setting does not name a usable strategy (message says why)."""


def register_strategy(cls: S) -> S:
    """Class decorator: make ``cls`` selectable by its ``name``."""
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise TypeError(f"{cls!r} is not a Strategy subclass")
    _REGISTRY[cls.name] = cls
    return cls


register_strategy(DefaultStrategy)
register_strategy(SmaCrossRsi)


def available_strategies() -> dict[str, str]:
    """Registered strategy names and their one-line descriptions."""
    return {name: cls.description for name, cls in sorted(_REGISTRY.items())}


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise StrategyLoadError(f"strategy file {path} does not exist")
    module_name = f"kmg_user_strategy_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StrategyLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a user's file: report any error as a load error
        raise StrategyLoadError(f"{path} failed to import: {exc}") from exc
    return module


def _pick(module: ModuleType, class_name: str | None, where: str) -> type[Strategy]:
    if class_name:
        cls = getattr(module, class_name, None)
        if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
            raise StrategyLoadError(f"{where} has no Strategy subclass named {class_name}")
        return cls
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Strategy)
        and obj.__module__ == module.__name__
        and not inspect.isabstract(obj)
    ]
    if len(found) != 1:
        names = ", ".join(c.__name__ for c in found) or "none"
        raise StrategyLoadError(
            f"{where} must define exactly one Strategy subclass (found {names}); "
            "name it with file.py:ClassName"
        )
    return found[0]


def load_strategy_class(spec: str) -> type[Strategy]:
    """Resolve a ``STRATEGY`` value to a strategy class (see the module doc)."""
    spec = spec.strip()
    if not spec:
        raise StrategyLoadError("STRATEGY is empty")
    if spec in _REGISTRY:
        return _REGISTRY[spec]
    target, _, class_name = spec.partition(":") if not Path(spec).is_file() else (spec, "", "")
    if target.endswith(".py"):
        cls = _pick(_load_file(Path(target)), class_name or None, target)
    elif class_name:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise StrategyLoadError(f"cannot import module {target}: {exc}") from exc
        cls = _pick(module, class_name, target)
    else:
        known = ", ".join(sorted(_REGISTRY))
        raise StrategyLoadError(
            f"unknown strategy {spec!r}; use one of {known}, a .py file or module:Class"
        )
    if inspect.isabstract(cls):
        raise StrategyLoadError(f"{cls.__name__} does not implement decide()")
    logger.info("loaded strategy {} ({}) from {}", cls.name, cls.__name__, spec)
    return cls


def create_strategy(
    spec: str | type[Strategy],
    params: SignalParams | None = None,
    *,
    symbol: str = "",
    timeframe: str = "",
) -> Strategy:
    """A strategy instance for one symbol, from a ``STRATEGY`` value or a class."""
    cls = load_strategy_class(spec) if isinstance(spec, str) else spec
    return cls(params or SignalParams(), symbol=symbol, timeframe=timeframe)
