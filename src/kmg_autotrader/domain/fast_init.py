"""A cheaper ``__init__`` for the domain's frozen, slotted dataclasses.

A frozen dataclass refuses plain attribute assignment, so the ``__init__`` that
:mod:`dataclasses` generates stores every field with ``object.__setattr__`` — on CPython 3.11
several times the cost of a plain store. The pipeline builds these values by the hundred
thousand in a backtest (orders, fills, positions, signals, candidates, risk decisions: about
fifteen per round trip), so :func:`fast_init` regenerates the same ``__init__`` — same
parameters, defaults and default factories — storing each field through its slot's own
descriptor (the very setter ``object.__setattr__`` ends up calling, without the look-up).
Nothing else about the class changes: assignment after construction still raises
:class:`dataclasses.FrozenInstanceError`, and ``__eq__``, ``__hash__``, ``__repr__``,
``dataclasses.replace`` and pickling are the dataclass's own.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

_T = TypeVar("_T")


class _Factory:
    """Marks a parameter whose default comes from a ``default_factory`` (as dataclasses do)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def fast_init(cls: type[_T]) -> type[_T]:
    """Give ``cls`` (a frozen, slotted dataclass) an ``__init__`` that stores fields through
    their slot descriptors. Use it above ``@dataclass(frozen=True, slots=True)``.

    Only what the domain uses is supported: a class with ``__post_init__``, ``InitVar``,
    ``init=False`` or keyword-only fields is refused with ``TypeError`` rather than given an
    ``__init__`` that would differ from the dataclass's.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_init needs a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: fast_init does not run __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # checked just above
    if len(fields) != len(getattr(cls, "__dataclass_fields__", {})):  # an InitVar or ClassVar
        raise TypeError(f"{cls.__name__}: fast_init supports plain fields only")
    namespace: dict[str, Any] = {"_FACTORY": _FACTORY}
    params_src: list[str] = []
    body: list[str] = []
    for field in fields:
        name = field.name  # an identifier: safe to paste into the source
        if not field.init or field.kw_only:
            raise TypeError(f"{cls.__name__}.{name}: fast_init supports plain init fields only")
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__  # the slot's member descriptor
        value = name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            params_src.append(f"{name}=_default_{name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            params_src.append(f"{name}=_FACTORY")
            value = f"_factory_{name}() if {name} is _FACTORY else {name}"
        else:
            params_src.append(name)
        body.append(f"    _set_{name}(self, {value})")
    source = "\n".join([f"def __init__(self, {', '.join(params_src)}):", *(body or ["    pass"])])
    exec(source, namespace)  # made of field names only, like dataclasses' own __init__
    init = namespace["__init__"]
    original = cls.__dict__["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(original.__annotations__)
    init.__doc__ = original.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


__all__ = ["fast_init"]
