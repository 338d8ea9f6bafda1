"""``GET /risk`` and ``PUT /risk``: the runtime-editable risk parameters of the dashboard's mode.

Each value comes with its source: the newest stored version of the mode (``dashboard edit vN
at <time>``) wins over ``.env``, which wins over the defaults.

Every percentage is shown and typed in percent (``max_position_percent`` 20 = 20 %) and stored
as the rules read it (0.2): :mod:`kmg_autotrader.risk.units` converts. Validation is the risk
package's: an invalid change returns 422 with one error per field and stores nothing. Every
accepted change is a new version, recorded with who made it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from kmg_autotrader.risk import units
from kmg_autotrader.risk.params import env_sources
from kmg_autotrader.webui.auth import Principal
from kmg_autotrader.webui.context import WebContext, get_context
from kmg_autotrader.webui.risk_store import field_errors
from kmg_autotrader.webui.routes.common import BODY_RESPONSES, SECURED
from kmg_autotrader.webui.schemas import ErrorResponse, RiskChanges, RiskResponse, RiskUpdate

router = APIRouter(tags=["risk"], **SECURED)


class RiskValidationError(Exception):
    """A risk change the store refused; ``errors`` is ``[{"field", "message"}]``.

    Types and ranges are checked against the documented body first (422), so what the store
    still refuses breaks a rule *between* parameters (``max_position_percent`` at most
    ``max_total_exposure_percent``, the loss cooldown at least the plain one): a conflict with
    the other values in effect, answered 409. No JSON schema can state such a rule.
    """

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__("risk change conflicts with the other parameters")
        self.errors = errors


def _type_name(prop: dict[str, Any]) -> str:
    if "type" in prop:
        return str(prop["type"])
    for option in prop.get("anyOf", []):
        if option.get("type") not in (None, "null"):
            return str(option["type"])
    return "string"


def _fields(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Each field as the editor shows it: ranges, default and description in its unit."""
    properties = model.model_json_schema().get("properties", {})
    typed = RiskChanges.model_json_schema().get("properties", {})  # ranges in percent
    defaults = units.shown({name: prop.get("default") for name, prop in properties.items()})
    out = []
    for name, prop in properties.items():
        bounds = typed.get(name, prop)
        out.append(
            {
                "name": name,
                "title": str(prop.get("title", name)),
                "description": units.DESCRIPTIONS.get(name, str(prop.get("description", ""))),
                "type": _type_name(prop),
                "minimum": bounds.get("minimum"),
                "maximum": bounds.get("maximum"),
                "exclusive_minimum": bounds.get("exclusiveMinimum"),
                "exclusive_maximum": bounds.get("exclusiveMaximum"),
                "default": defaults[name],
                "unit": units.UNITS.get(name),
            }
        )
    return out


def _response(context: WebContext) -> dict[str, Any]:
    effective = context.risk_store.effective(env_sources(context.settings))
    params = effective.params
    stored = effective.stored
    model = type(params) if isinstance(params, BaseModel) else None
    values = params.model_dump(mode="json") if isinstance(params, BaseModel) else dict(params)
    return {
        "mode": effective.mode.value,
        "version": effective.version,
        "params": units.shown(values),
        "fields": _fields(model) if model else [],
        "sources": [
            {
                "name": value.name,
                "source": value.source,
                "setting": value.setting,
                "overrides": value.overrides,
            }
            for value in effective.values
        ],
        "source": stored["source"] if stored else "defaults",
        "comment": stored["comment"] if stored else None,
        "updated_at": stored["created_at"] if stored else None,
    }


@router.get("/risk", response_model=RiskResponse)
def get_risk(context: WebContext = Depends(get_context)) -> dict[str, Any]:
    """The current parameters, their version, and each field's type, range and meaning."""
    return _response(context)


@router.put(
    "/risk",
    response_model=RiskResponse,
    responses={
        **BODY_RESPONSES,
        409: {
            "model": ErrorResponse,
            "description": "The new set breaks a rule between parameters (e.g. "
            "max_position_percent above max_total_exposure_percent); nothing was stored.",
        },
        422: {
            "model": ErrorResponse,
            "description": "A value of the wrong type or out of its range; nothing was stored.",
        },
    },
)
def put_risk(
    body: RiskUpdate, request: Request, context: WebContext = Depends(get_context)
) -> dict[str, Any]:
    """Change some parameters. Each value is checked (type, range: 422), then the whole new
    set (rules between parameters: 409) before anything is stored; on any error nothing
    changes."""
    principal: Principal = request.state.principal
    changes = body.changed()  # as typed: percentages in percent (also in the Logs line)
    try:
        version, _ = context.risk_store.update(
            units.stored(changes),  # typed in percent, stored as the rules read
            source=principal.source,
            comment=body.comment,
        )
    except Exception as exc:
        errors = field_errors(exc)
        if errors is None:
            raise
        raise RiskValidationError(errors) from None
    # the Logs page's audit line (the stored version keeps the whole set)
    listed = ", ".join(f"{name} = {value}" for name, value in sorted(changes.items()))
    context.repos.events.add(
        context.mode,
        "risk_params_changed",
        f"risk parameters v{version}: {listed or 'no change'}"
        + (f" ({body.comment})" if body.comment else ""),
        source=principal.source,
        details={"version": version, "changes": changes, "comment": body.comment or ""},
    )
    return _response(context)
