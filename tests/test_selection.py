"""``--select`` / ``--exclude`` on a real project: dbt's forms, each against the graph below.

    s.a → s.b → s.c → s.d        s.b → s.f        s.x → s.c        t.e (alone)
"""

from __future__ import annotations

import pytest

from daglake.errors import UsageError
from daglake.graph.dag import DAG
from daglake.graph.selection import select
from daglake.project import Project, load_project
from tests.conftest import ProjectFactory

FILES = {
    "res/s/a.sql": "SELECT 1 AS v",
    "res/s/b.sql": "SELECT v FROM s.a",
    "res/s/c.sql": "SELECT v FROM s.b UNION ALL SELECT v FROM s.x",
    "res/s/d.sql": "SELECT v FROM s.c",
    "res/s/f.sql": "SELECT v FROM s.b",
    "res/s/x.sql": "SELECT 2 AS v",
    "res/t/e.sql": "SELECT 3 AS v",
}


@pytest.fixture
def graph(make_project: ProjectFactory) -> tuple[Project, DAG[str]]:
    project = load_project(make_project(FILES))
    assert project.problems == []
    return project, DAG(project.dependencies())


def names(*short: str) -> set[str]:
    return {f"t.{n}" if n == "e" else f"s.{n}" for n in short}


CASES = {
    "s.c": names("c"),
    "+s.c": names("c", "b", "x", "a"),
    "1+s.c": names("c", "b", "x"),
    "0+s.c": names("c"),
    "s.b+": names("b", "c", "d", "f"),
    "s.b+1": names("b", "c", "f"),
    "1+s.b+1": names("a", "b", "c", "f"),
    "@s.b": names("a", "b", "c", "d", "f", "x"),  # b, what reads it, and all those read
    "@s.x": names("x", "c", "d", "b", "a"),
    "@t.e": names("e"),
    "s.b+,+s.d": names("b", "c", "d"),  # intersection
    "res/s/*,1+s.d": names("c", "d"),
    "s.a, s.a+": names("a"),
}


@pytest.mark.parametrize("selector", list(CASES))
def test_each_selector_form(graph: tuple[Project, DAG[str]], selector: str) -> None:
    project, dag = graph
    assert select(project, dag, [selector]) == CASES[selector]


def test_several_selectors_are_a_union_and_exclude_takes_the_same_forms(graph: tuple[Project, DAG[str]]) -> None:
    project, dag = graph
    assert select(project, dag, ["s.x", "t.e"]) == names("x", "e")
    assert select(project, dag, ["@s.b"], ["s.a+1"]) == names("c", "d", "f", "x")
    assert select(project, dag, [], ["@s.x", "s.f"]) == names("e")


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("@s.b+", "@ does not combine with +"),
        ("2+@s.b", "is not a selector"),
        ("+", "is not a selector"),
        ("s.a,", "an empty part around ','"),
        ("", "is empty"),
        ("s.a,s.nothing", "'s.nothing' matches no task"),
    ],
)
def test_a_malformed_selector_is_one_usage_error(graph: tuple[Project, DAG[str]], selector: str, message: str) -> None:
    project, dag = graph
    with pytest.raises(UsageError, match=message):
        select(project, dag, [selector])
