"""Golden files: each fixture states the outputs and reads expected of it in its header."""

from __future__ import annotations

from pathlib import Path

import pytest

from daglake.sql.analysis import analyze

FIXTURES = Path(__file__).parent / "fixtures" / "analysis"
CASES = sorted(FIXTURES.rglob("*.sql"))


def expected(text: str, key: str) -> list[str]:
    for line in text.splitlines():
        if line.startswith(f"-- expect {key}:"):
            value = line.split(":", 1)[1]
            return [v.strip() for v in value.split(",") if v.strip()]
    raise AssertionError(f"fixture lacks '-- expect {key}:'")


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_golden_reads_and_writes(path: Path) -> None:
    text = path.read_text()
    default_output = f"{path.parent.name}.{path.stem}"
    analysis, _ = analyze(text, "bigquery", default_output)
    assert analysis.errors == []
    assert analysis.outputs == expected(text, "outputs")
    assert sorted(analysis.reads) == sorted(expected(text, "reads"))


def test_read_locations_point_at_the_line_and_column() -> None:
    text = "SELECT *\nFROM raw.a\nJOIN\n  `raw.b` USING (id)"
    analysis, _ = analyze(text, "bigquery", "tmp.x")
    assert analysis.reads["raw.a"][0] == 2
    assert analysis.reads["raw.b"][0] == 4


def test_statement_lines_follow_comments_and_blank_lines() -> None:
    text = "-- header\n\nCREATE TABLE raw.a AS SELECT 1;\n\n\nINSERT INTO raw.a SELECT 2;\n"
    analysis, _ = analyze(text, "bigquery", "raw.f")
    assert analysis.statements == [(3, "create"), (6, "insert")]
    assert analysis.output_lines == {"raw.a": 3}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("SELECT FROM WHERE", 1),
        ("SELECT 1;\n\nSELECT a FROM b WHERE", 3),
        ("SELECT 'unterminated", 1),
    ],
)
def test_syntax_errors_carry_their_line(text: str, line: int) -> None:
    analysis, _ = analyze(text, "bigquery", "tmp.x")
    assert analysis.errors
    assert analysis.errors[0][0] == line
    assert "Token" not in analysis.errors[0][2]


def test_two_bare_queries_in_one_file_are_an_error() -> None:
    analysis, _ = analyze("SELECT 1;\nSELECT 2", "bigquery", "tmp.x")
    assert analysis.errors == [
        (2, 0, "a file may hold only one bare query (its result is the table)")
    ]


def test_analysis_survives_its_json_round_trip() -> None:
    from daglake.sql.analysis import SqlAnalysis

    analysis, _ = analyze((FIXTURES / "raw" / "multi_statement.sql").read_text(), "bigquery", "raw.m")
    assert SqlAnalysis.from_json(analysis.to_json()) == analysis
