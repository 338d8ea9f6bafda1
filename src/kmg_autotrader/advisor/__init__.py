"""LLM advisor: a structured second opinion on a rule candidate.

It never goes around the risk manager, and a bad or missing answer never stops the bot: the
advisor abstains and the advisor mode (``off`` | ``advisory`` | ``required``) decides.

Public API: :func:`build_advisor` → :class:`Advisor` (``await start()``,
``await review(candidate, context)``, ``status()``, ``await aclose()``),
:class:`AdvisorUnavailableError` (``ADVISOR_MODE=required`` and the advisor cannot run),
:class:`AdvisorContext` / :class:`CandleSummary`, :func:`apply_advice`, :class:`LocalLlmServer`,
and :class:`AdvisorPipelineStage` (the pipeline's ``AdvisorStage``).
"""

from kmg_autotrader.advisor.apply import apply_advice
from kmg_autotrader.advisor.context import AdvisorContext, CandleSummary
from kmg_autotrader.advisor.errors import AdvisorUnavailableError
from kmg_autotrader.advisor.factory import build_advisor
from kmg_autotrader.advisor.local_server import LocalLlmError, LocalLlmServer
from kmg_autotrader.advisor.service import Advisor
from kmg_autotrader.advisor.stage import AdvisorPipelineStage

__all__ = [
    "Advisor",
    "AdvisorContext",
    "AdvisorPipelineStage",
    "AdvisorUnavailableError",
    "CandleSummary",
    "LocalLlmError",
    "LocalLlmServer",
    "apply_advice",
    "build_advisor",
]
