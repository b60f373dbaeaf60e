from __future__ import annotations

from daglake.graph.dag import DAG


def test_cycles_are_reported_whole_and_closed() -> None:
    dag = DAG({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "x": ["y"], "y": ["x"]})
    assert sorted(dag.cycles()) == [["a", "b", "c", "a"], ["x", "y", "x"]]


def test_acyclic_graph_has_no_cycles_and_a_full_order() -> None:
    dag = DAG({"a": [], "b": ["a"], "c": ["a", "b"]})
    assert dag.cycles() == []
    assert dag.topological_order() == ["a", "b", "c"]
    assert dag.levels() == [["a"], ["b"], ["c"]]


def test_ancestors_and_descendants() -> None:
    dag = DAG({"a": [], "b": ["a"], "c": ["b"], "d": []})
    assert dag.ancestors("c") == {"a", "b"}
    assert dag.descendants("a") == {"b", "c"}
    assert dag.descendants("d") == set()


def test_remaining_path_sums_the_longest_chain() -> None:
    dag = DAG({"a1": [], "a2": ["a1"], "b1": [], "b2": ["b1"]})
    remaining = dag.remaining_path({"a1": 0.1, "a2": 1.0, "b1": 1.0, "b2": 0.1})
    assert remaining == {"a1": 1.1, "a2": 1.0, "b1": 1.1, "b2": 0.1}


def test_subgraph_keeps_only_edges_inside() -> None:
    dag = DAG({"a": [], "b": ["a"], "c": ["b"]}).subgraph(["b", "c"])
    assert dag.upstream == {"b": set(), "c": {"b"}}


def test_ancestors_and_descendants_to_a_depth_take_the_shortest_distance() -> None:
    # d reads c and a; c reads b; b reads a: a is one edge from d, though also three
    dag = DAG({"a": [], "b": ["a"], "c": ["b"], "d": ["c", "a"]})
    assert dag.ancestors("d", 0) == set()
    assert dag.ancestors("d", 1) == {"c", "a"}
    assert dag.ancestors("d", 2) == {"a", "b", "c"}
    assert dag.descendants("a", 1) == {"b", "d"}
    assert dag.descendants("b", 1) == {"c"}
    assert dag.descendants("b", 5) == dag.descendants("b") == {"c", "d"}
