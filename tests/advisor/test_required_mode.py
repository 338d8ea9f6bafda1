"""``ADVISOR_MODE=required`` never becomes rules-only (issue 18 item 7): an advisor that cannot
run refuses to be built (or started) with one typed, one-line error the CLI turns into exit 2,
and a server that fails later makes every candidate refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from kmg_autotrader.advisor import AdvisorPipelineStage, AdvisorUnavailableError, build_advisor
from kmg_autotrader.advisor.local_server import missing_requirements
from kmg_autotrader.cli_support import EXIT_USAGE, fail
from kmg_autotrader.config import Settings
from kmg_autotrader.domain.clock import SimulatedClock
from kmg_autotrader.storage.database import open_database
from kmg_autotrader.storage.repositories import Repositories
from tests.advisor.conftest import load_candles, make_candidate, make_context

LOCAL_MISSING = missing_requirements()


def exits_2_with_one_line(exc: AdvisorUnavailableError, capsys: pytest.CaptureFixture[str]) -> str:
    """What the CLI does with the error: ``fail(str(exc))``: exit 2, one line on stderr."""
    with pytest.raises(typer.Exit) as info:
        fail(str(exc))
    assert info.value.exit_code == EXIT_USAGE == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ADVISOR_MODE=required" in err
    return err


@pytest.mark.db
def test_required_with_a_local_provider_that_has_no_model_refuses_to_build(
    repos: Repositories, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(
        _env_file=None,
        advisor_mode="required",
        llm_provider="local",
        gguf_model_path=str(tmp_path / "none.gguf"),
    )
    with pytest.raises(AdvisorUnavailableError) as info:  # was: an advisor in mode "off"
        build_advisor(settings, repos, SimulatedClock(0), vault=False)
    line = exits_2_with_one_line(info.value, capsys)
    assert "none.gguf" in line or "llama-cpp-python" in line


@pytest.mark.db
def test_required_without_an_endpoint_refuses_to_build_even_past_validation(
    repos: Repositories,
) -> None:
    # model_copy skips the settings validator that normally refuses this combination
    settings = Settings(_env_file=None, openai_api_key="sk-x").model_copy(
        update={"openai_api_key": None, "advisor_mode": "required"}
    )
    with pytest.raises(AdvisorUnavailableError, match="OPENAI_API_KEY"):
        build_advisor(settings, repos, SimulatedClock(0), vault=False)


@pytest.mark.db
def test_advisory_with_a_local_provider_that_has_no_model_is_still_off(
    repos: Repositories, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        advisor_mode="advisory",
        llm_provider="local",
        gguf_model_path=str(tmp_path / "none.gguf"),
    )
    advisor = build_advisor(settings, repos, SimulatedClock(0), vault=False)
    assert advisor.mode == "off" and "LLM_PROVIDER=local" in advisor.status()["reason"]


@pytest.mark.skipif(LOCAL_MISSING is not None, reason=f"local-llm extra: {LOCAL_MISSING}")
async def test_required_with_a_local_server_that_cannot_start(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"not a gguf file")
    settings = Settings(
        _env_file=None, advisor_mode="required", llm_provider="local", gguf_model_path=str(bogus)
    )
    database = open_database(f"sqlite:///{tmp_path / 'required.sqlite'}")
    repos = Repositories(database)
    advisor = build_advisor(settings, repos, SimulatedClock(0), vault=False)
    try:
        with pytest.raises(AdvisorUnavailableError) as info:  # at start, before any trade
            await advisor.start()
        line = exits_2_with_one_line(info.value, capsys)
        assert "exited during start-up" in line
        # Had the caller not started it: the first review abstains and the candidate is refused
        candles = load_candles(400)
        candidate = make_candidate(candles, 350)
        stage = AdvisorPipelineStage(advisor, lambda _c: make_context(candles, 350))
        decision = await stage.review(candidate)
        assert decision.fallback == "unreachable"
        assert stage.apply(candidate, decision, advisor.mode) is None
        assert advisor.mode == "required" and advisor.status()["reason"]
    finally:
        await advisor.aclose()

    advisory = build_advisor(
        settings.model_copy(update={"advisor_mode": "advisory"}),
        repos,
        SimulatedClock(0),
        vault=False,
    )
    try:
        await advisory.start()  # advisory: logged, the rule decision will stand
        assert "exited during start-up" in advisory.status()["reason"]
    finally:
        await advisory.aclose()
        database.dispose()
