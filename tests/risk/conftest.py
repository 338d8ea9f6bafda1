"""Fixtures of the risk tests (builders live in ``helpers``)."""

from __future__ import annotations

import pytest

from tests.risk.helpers import Rig, build_rig


@pytest.fixture
def rig() -> Rig:
    """A manager with default parameters."""
    return build_rig()
