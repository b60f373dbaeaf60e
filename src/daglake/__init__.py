"""daglake: run a folder of SQL and Python tasks as one dependency-ordered, parallel pipeline.

The public surface is small and imported lazily so that ``daglake --help`` starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglake._lazy import lazy_attributes

__version__ = "0.1.0"
__all__ = ["DaglakeError", "RunOptions", "TaskContext", "load_project", "run", "task"]

if TYPE_CHECKING:
    from daglake.context import TaskContext
    from daglake.errors import DaglakeError
    from daglake.project import load_project
    from daglake.pytasks import task
    from daglake.runner import RunOptions, run

__getattr__ = lazy_attributes(
    "daglake",
    {
        "DaglakeError": "daglake.errors",
        "load_project": "daglake.project",
        "RunOptions": "daglake.runner",
        "run": "daglake.runner",
        "task": "daglake.pytasks",
        "TaskContext": "daglake.context",
    },
)
