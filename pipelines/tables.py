"""Tables for people: plain text for terminals and logs (fixed columns, numbers right-aligned), and markdown
for the Dagster UI's metadata."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()) -> str:
    """Columns as wide as their widest cell; `right` lists the column indexes to right-align."""
    cells = [[str(h) for h in headers], *([("" if v is None else str(v)) for v in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    right_set = set(right)

    def line(row: list[str]) -> str:
        parts = [
            cell.rjust(w) if i in right_set else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A small markdown table for check and materialization metadata in the UI."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
