"""The one decision pipeline: signal → advisor → risk → execution, live and in backtests.

Entry point: :class:`DecisionPipeline` (``await pipeline.process(decision, market=…,
now_ms=…)``). The protocols in :mod:`.ports` say what it needs from each stage.
"""

from kmg_autotrader.pipeline.decision import DecisionPipeline, PendingEntry, PipelineOutcome
from kmg_autotrader.pipeline.feedback import PositionFeedback, RiskBookkeeping
from kmg_autotrader.pipeline.ports import (
    AdvisorMode,
    AdvisorStage,
    DecisionRecorder,
    Executor,
    PortfolioStateSource,
    PositionReader,
    RiskGate,
)
from kmg_autotrader.pipeline.recorder import CountingRecorder, NullRecorder

__all__ = [
    "AdvisorMode",
    "AdvisorStage",
    "CountingRecorder",
    "DecisionPipeline",
    "DecisionRecorder",
    "Executor",
    "NullRecorder",
    "PendingEntry",
    "PipelineOutcome",
    "PortfolioStateSource",
    "PositionFeedback",
    "PositionReader",
    "RiskBookkeeping",
    "RiskGate",
]
