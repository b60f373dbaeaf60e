"""``daglake serve``: the HTTP API (SPEC §9). Imported only by that command: FastAPI and
pydantic stay out of every other command's start-up."""

from __future__ import annotations
