"""The answer schema: the shipped JSON schema file, the typed pydantic model, and the variants
each way of forcing JSON needs (OpenAI strict Structured Outputs, a llama.cpp grammar)."""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_FILE = "gpt_response_schema.json"

# Keywords OpenAI's strict mode may refuse; they are still enforced by our own validation.
_STRICT_UNSUPPORTED = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "minLength",
    "maxLength",
    "maxItems",
    "$schema",
    "$id",
    "title",
    "description",
)


@cache
def answer_schema() -> dict[str, Any]:
    """The JSON schema shipped in the package (``advisor/gpt_response_schema.json``)."""
    text = resources.files("kmg_autotrader.advisor").joinpath(SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def strict_schema() -> dict[str, Any]:
    """The schema as OpenAI Structured Outputs (``strict: true``) wants it: every property
    required (optional ones are nullable instead) and no unsupported keywords."""
    schema = copy.deepcopy(answer_schema())

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k not in _STRICT_UNSUPPORTED}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    stripped: dict[str, Any] = strip(schema)
    props = stripped["properties"]
    if props["risks"].get("type") == "array":
        props["risks"]["type"] = ["array", "null"]
    stripped["required"] = list(props)
    stripped["additionalProperties"] = False
    return stripped


def response_format_json_schema() -> dict[str, Any]:
    """``response_format`` for Structured Outputs."""
    return {
        "type": "json_schema",
        "json_schema": {"name": "advisor_answer", "strict": True, "schema": strict_schema()},
    }


Confidence = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
Price = Annotated[float, Field(strict=True, gt=0.0, allow_inf_nan=False)]


class AdvisorAnswer(BaseModel):
    """The typed form of a schema-valid answer (strict: ``"0.7"`` is not a confidence)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reasoning: str = Field(min_length=1, max_length=4000)
    risks: list[str] | None = None
    action: Literal["buy", "sell", "hold"]
    confidence: Confidence
    entry: Price | None = None
    stop_loss: Price | None = None
    take_profit: Price | None = None
    horizon_minutes: Annotated[int, Field(ge=1, le=10080)] | None = None  # 120.0 is fine


# A GBNF grammar equivalent to the schema, for llama.cpp servers (they refuse ``json_schema``
# but honour ``grammar``). Field order puts the reasoning first; whitespace is at most one space
# because small models otherwise loop on newlines. There are no large bounded repetitions
# (``x{20,400}``): llama.cpp expands those into one rule per step, which makes every sampled
# token slow. Strings are unbounded here; ``max_tokens`` caps the answer, and the length limits
# are enforced by our validation (an over-long or unfinished answer is rejected there).
_GBNF = r"""
root ::= "{" ws reasoning "," ws risklist "," ws action "," ws confidence LEVELS horizon ws "}"
reasoning ::= "\"reasoning\":" ws text
risklist ::= "\"risks\":" ws risks
action ::= "\"action\":" ws ("\"buy\"" | "\"sell\"" | "\"hold\"")
confidence ::= "\"confidence\":" ws ("0" ("." [0-9] [0-9]?)? | "1" (".0")?)
levels ::= ("," ws entry "," ws stop "," ws target)?
entry ::= "\"entry\":" ws price
stop ::= "\"stop_loss\":" ws price
target ::= "\"take_profit\":" ws price
horizon ::= ("," ws "\"horizon_minutes\":" ws [1-9] [0-9]? [0-9]? [0-9]?)?
price ::= [1-9] [0-9]* ("." [0-9]+)?
risks ::= "[" ws "]" | "[" ws text ("," ws text)? ("," ws text)? ws "]"
text ::= "\"" char+ "\""
char ::= [^"\\\x00-\x1f]
ws ::= " "?
"""


def gbnf_grammar(*, levels: bool = True) -> str:
    """The answer grammar; ``levels=False`` leaves out entry/stop/target, for models too small
    to do price arithmetic (their levels would only be rejected by the semantic checks)."""
    if levels:
        return _GBNF.replace("LEVELS", "levels").strip() + "\n"
    unused = ("levels ", "entry ", "stop ", "target ", "price ")
    lines = [line for line in _GBNF.strip().splitlines() if not line.startswith(unused)]
    return "\n".join(lines).replace(" LEVELS", "") + "\n"


GBNF_GRAMMAR = gbnf_grammar()
