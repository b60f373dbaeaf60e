"""Data-quality checks: declared per table, each run as one query returning the failing rows.

Checks live in three places:

1. ``daglake.toml``, one table per checked table::

       [checks."final.products"]
       not_null = ["product_id", "name"]          # one check per column
       unique = ["product_id", ["order_id", "line"]]  # a list is a composite key
       accepted_values = { status = ["active", "retired"] }
       relationships = { supplier_id = "raw.suppliers.id" }
       row_count = { min = 1, max = 100000 }      # either bound may be left out
       expression = ["margin_pct BETWEEN 0 AND 100"]
       freshness = { column = "updated_at", max_age = "36h" }   # s, m, h, d, w; "1d12h"
       reconcile = { table = "raw.products", key = "product_id", other_key = "id" }
       severity = "error"                         # the default for this table's checks
       warn = ["unique", "row_count"]             # these kinds only warn

       [[checks."final.products".checks]]         # explicit entries: any kind, own severity
       kind = "expression"
       expression = "price >= 0"
       severity = "warn"
       name = "price is not negative"             # optional; names must be unique
       where = "status = 'active'"                # optional: check only these rows

   ``row_count``, ``freshness`` and ``reconcile`` tables also take ``severity`` and ``where``.
   ``reconcile`` without ``key`` compares row counts; with ``key`` (a column or a list) it
   compares the distinct key sets both ways (``other_key`` names the other table's columns
   when they differ). Explicit entries take ``column`` (``not_null``, ``accepted_values``,
   ``relationships``, ``freshness``), ``columns`` or ``column`` (``unique``), ``values``,
   ``to`` (``"dataset.table.column"``), ``min``/``max``, ``expression``, ``max_age``,
   ``table``/``key``/``other_key``.

2. ``<stem>.checks.toml``, ``.checks.yml`` or ``.checks.yaml`` beside ``<stem>.sql``: the same
   keys without the table level, checking that task's output table::

       not_null: [product_id]
       accepted_values: {status: [active, retired]}
       checks:
         - {kind: expression, expression: "price >= 0", severity: warn}

3. A ``.sql`` file in a check folder (``[project] checks``, default ``checks/``): one query
   returning the failing rows. It checks the first table it reads unless a header comment
   says otherwise (``-- table: final.products``); ``-- severity: warn`` makes it warn. Its
   name is its path.

SQL fragments (``expression``, ``where``, check files) are written in the project's dialect
and translated like tasks. Column and table names are quoted identifiers and values literals,
never spliced text.

NULLs: ``not_null`` fails on NULL. ``unique``, ``accepted_values`` and ``relationships`` judge
values, so NULLs pass them (as SQL's UNIQUE and FOREIGN KEY constraints do; a composite key
with any NULL column is skipped): add ``not_null`` to forbid them. An ``expression`` must be
TRUE, so a row where it is NULL fails (unlike dbt's ``expression_is_true``). ``freshness``
fails when the column holds no value at all. ``reconcile`` compares keys with EXCEPT, so a
NULL key matches a NULL key and a NULL on one side only is a difference.

Failing rows: ``not_null``, ``accepted_values``, ``relationships`` and ``expression`` give
the rows; ``unique`` gives each duplicated key with its number of ``rows``; keyed
``reconcile`` gives ``missing_from`` (the table lacking the key) and the key; ``row_count``
(``actual``, ``min``, ``max``), ``freshness`` (``latest``, ``cutoff``, ``max_age``) and
counted ``reconcile`` (``actual``, ``expected``) give one row when they fail.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daglake._lazy import lazy_attributes

if TYPE_CHECKING:
    from daglake.checks.load import load_checks
    from daglake.checks.queries import check_sql
    from daglake.checks.run import CheckResult, run_check
    from daglake.checks.spec import KINDS, SEVERITIES, CheckSpec

__all__ = [
    "KINDS",
    "SEVERITIES",
    "CheckResult",
    "CheckSpec",
    "check_sql",
    "load_checks",
    "run_check",
]

# Imported on first use: the queries need sqlglot, which a run without checks never loads.
__getattr__ = lazy_attributes(
    "daglake.checks",
    {
        "load_checks": "daglake.checks.load",
        "check_sql": "daglake.checks.queries",
        "CheckResult": "daglake.checks.run",
        "run_check": "daglake.checks.run",
        "KINDS": "daglake.checks.spec",
        "SEVERITIES": "daglake.checks.spec",
        "CheckSpec": "daglake.checks.spec",
    },
)
