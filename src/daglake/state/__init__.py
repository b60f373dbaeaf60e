"""Run history: runs, task runs and attempts in SQLite (``sqlite3``) or PostgreSQL (SQLAlchemy)."""

from __future__ import annotations

from daglake.state.recorder import StateRecorder
from daglake.state.store import RunRecord, StateStore, state_url

__all__ = ["RunRecord", "StateRecorder", "StateStore", "state_url"]
