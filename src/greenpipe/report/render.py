"""Markdown and HTML renderings of report tables (the HTML embeds its plots: one file)."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Format = str | Callable[[dict], str]
Column = tuple[str, str, Format]  # (row key, header, "{:.3f}" or a function of the row)


@dataclass(frozen=True)
class Table:
    """A titled table: rows of dicts shown through `cols`, with an optional intro line."""

    title: str
    rows: list[dict[str, Any]]
    cols: Sequence[Column]
    intro: str = ""
    notes: list[str] = field(default_factory=list)


def cell(row: dict, key: str, fmt: Format) -> str:
    """The text of one cell: "n/a" for a missing value, else the format applied."""
    if callable(fmt):
        return fmt(row)
    value = row.get(key)
    if value is None:
        return "n/a"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _md_table(rows: list[dict], cols: Sequence[Column]) -> str:
    head = "| " + " | ".join(c[1] for c in cols) + " |"
    sep = "|" + "|".join("---" for _ in cols) + "|"
    body = ["| " + " | ".join(cell(r, k, f) for k, _, f in cols) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _html_table(rows: list[dict], cols: Sequence[Column]) -> str:
    head = "".join(f"<th>{html.escape(c[1])}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell(r, k, f))}</td>" for k, _, f in cols) + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def markdown(
    title: str, tables: list[Table], notes: list[str], images: list[tuple[str, str]]
) -> str:
    """A Markdown page: the tables, then the images (alt text, relative path), then notes."""
    parts = [f"# {title}", ""]
    for t in tables:
        parts += [f"## {t.title}", ""]
        parts += [t.intro, ""] if t.intro else []
        parts += [_md_table(t.rows, t.cols), ""]
        parts += [*(f"- {n}" for n in t.notes), ""] if t.notes else []
    parts += [f"![{alt}]({path})\n" for alt, path in images]
    parts += ["## Notes", "", *(f"- {n}" for n in notes)]
    return "\n".join(parts) + "\n"


STYLE = (
    "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1em}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th{background:#eee}td:first-child{text-align:left}img{max-width:100%}"
)


def html_page(
    title: str, tables: list[Table], notes: list[str], images: list[tuple[str, bytes]]
) -> str:
    """One self-contained HTML page: the tables, the PNG images embedded, the notes."""
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    for t in tables:
        parts.append(f"<h2>{html.escape(t.title)}</h2>")
        if t.intro:
            parts.append(f"<p>{html.escape(t.intro)}</p>")
        parts.append(_html_table(t.rows, t.cols))
        if t.notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in t.notes) + "</ul>")
    for alt, png in images:
        img = base64.b64encode(png).decode()
        parts.append(
            f"<h2>{html.escape(alt)}</h2><img alt='{html.escape(alt, quote=True)}' "
            f"src='data:image/png;base64,{img}'/>"
        )
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes))
    return "".join(parts) + "</ul></body></html>\n"
