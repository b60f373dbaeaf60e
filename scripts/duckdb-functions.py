"""Write src/daglake/engines/duckdb_functions.txt: the functions a new DuckDB connection has
(DuckDB's own and its built-in extensions'), for the DuckDB release installed here.

The DuckDB engine finds a project's calls in this list without asking DuckDB, whose function
listing costs a connection and ~20-40 ms on a cold run; calls it does not find are asked of
DuckDB itself (extensions). Run it after changing the pinned DuckDB (a test says when):

    .venv/bin/python scripts/duckdb-functions.py
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from daglake.engines.duckdb import new_connection_functions

TARGET = Path(__file__).resolve().parent.parent / "src" / "daglake" / "engines" / "duckdb_functions.txt"


def main() -> None:
    names = new_connection_functions()
    TARGET.write_text(f"# duckdb {duckdb.__version__}\n" + "\n".join(names) + "\n", encoding="utf-8")
    print(f"{TARGET}: {len(names)} functions of duckdb {duckdb.__version__}")


if __name__ == "__main__":
    main()
