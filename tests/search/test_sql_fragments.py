"""SQL fragments keep each placeholder with its value however they are composed, run on a real SQLite."""

from __future__ import annotations

import sqlite3

from mcp_server.localcloud.search.sql import GROUP_SIZE, Sql, group, join, value_list


def _value(sql: Sql) -> object:
    with sqlite3.connect(":memory:") as conn:
        return conn.execute("SELECT " + sql.text, sql.params).fetchone()[0]


def test_grouping_many_operands_keeps_each_value_with_its_placeholder() -> None:
    parts = [Sql("? = ?", (n, n)) for n in range(3 * GROUP_SIZE + 5)]
    grouped = group(parts, " AND ")
    assert grouped.text.count("(") == 5  # four groups of at most GROUP_SIZE inside one
    assert _value(grouped) == 1
    parts[-1] = Sql("? = ?", (1, 2))
    assert _value(group(parts, " AND ")) == 0


def test_text_and_fragments_compose_in_text_order() -> None:
    sql = (
        "NOT "
        + Sql("(? > ?)", (1, 2))
        + " AND "
        + join([Sql("? < ?", (1, 2)), Sql("? = 'x'", ("x",))], " AND ")
    )
    assert sql == Sql("NOT (? > ?) AND ? < ? AND ? = 'x'", (1, 2, 1, 2, "x"))
    assert _value(sql) == 1
    assert _value("3 IN " + value_list([1, 2, 3])) == 1
    assert value_list([]) == Sql("(NULL)") and _value("3 IN " + value_list([])) is None
