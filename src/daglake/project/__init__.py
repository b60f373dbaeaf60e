"""Project discovery: files, tasks, dependencies and validation."""

from __future__ import annotations

from daglake.project.discovery import load_project
from daglake.project.model import Project, Read, Task

__all__ = ["Project", "Read", "Task", "load_project"]
