"""Run history: runs, task runs and attempts in a SQLAlchemy database."""

from __future__ import annotations

from daglake.state.recorder import StateRecorder
from daglake.state.store import RunRecord, StateStore, state_url

__all__ = ["RunRecord", "StateRecorder", "StateStore", "state_url"]
