"""Tests that need a system package `make test` installs (scripts/system-deps.sh)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str, purpose: str) -> NoReturn:
    """Skip on a developer's machine that lacks the package; in CI, where `make test` installs
    it, the tests must run, so a missing package fails them."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must exercise {purpose}")
    pytest.skip(reason)
