"""Markdown and HTML pages of a report, from the Jinja2 templates in report/templates/.

A `Page` is findings (plain sentences, grouped), pictures, tables and notes; `markdown()`
refers to the pictures by relative path, `html_page()` embeds them (one self-contained file,
autoescaped).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2

Format = str | Callable[[dict], str]
Column = tuple[str, str, Format]  # (row key, header, "{:.3f}" or a function of the row)


@dataclass(frozen=True)
class Image:
    """A PNG picture: its caption, its bytes (embedded in HTML) and its path relative to the
    Markdown file."""

    alt: str
    png: bytes
    path: str


@dataclass(frozen=True)
class Table:
    """A titled table: rows of dicts shown through `cols`, with an optional intro line and
    notes."""

    title: str
    rows: list[dict[str, Any]]
    cols: Sequence[Column]
    intro: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    """What a report shows, top to bottom: findings as (group, sentence) pairs (e.g.
    `findings.Finding`), pictures, tables, notes."""

    title: str
    tables: list[Table]
    notes: list[str]
    images: list[Image] = field(default_factory=list)
    findings: list[tuple[str, str]] = field(default_factory=list)


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


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("greenpipe.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


def _table_view(t: Table) -> dict[str, Any]:
    """Headers, and per row (text, "text" or "num") cells: a plain "{}" column holds names,
    every other one figures (right-aligned, kept on one line)."""
    kinds = ["text" if fmt == "{}" else "num" for _, _, fmt in t.cols]
    rows = [
        [(cell(r, k, f), kind) for (k, _, f), kind in zip(t.cols, kinds, strict=True)]
        for r in t.rows
    ]
    return {"table": t, "headers": [c[1] for c in t.cols], "rows": rows}


def _grouped(findings: Sequence[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The findings under their group (groups in order of first appearance), each sentence
    split at its first ": " into the lead shown in bold and the rest ("" lead if none)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for group, text in findings:
        lead, colon, rest = text.partition(": ")
        groups.setdefault(group, []).append((lead, rest) if colon else ("", text))
    return list(groups.items())


def _context(page: Page) -> dict[str, Any]:
    return {
        "title": page.title,
        "findings": _grouped(page.findings),
        "images": page.images,
        "tables": [_table_view(t) for t in page.tables],
        "notes": page.notes,
    }


def _md_cell(text: str) -> str:
    """A Markdown table cell: a "|" would end the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")


# a figure and its unit stay on one line in HTML ("+9.81 J" never wraps before the "J")
_UNIT = re.compile(r"(?<=\d) (?=[qryzafpnµmkMGTPEZRQ]?(?:J|gCO2e|W|s|ms|KiB|pt)\b)")


def _keep_units(text: str) -> str:
    return _UNIT.sub("\u00a0", text)


_ENV.filters["md_cell"] = _md_cell
_ENV.filters["keep_units"] = _keep_units
_ENV.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")


def markdown(page: Page) -> str:
    """The page in Markdown: findings, pictures by relative path, tables, notes."""
    return _ENV.get_template("report.md").render(_context(page))


def html_page(page: Page) -> str:
    """The page as one self-contained HTML file (PNGs embedded), laid out to fit 1280 px."""
    return _ENV.get_template("report.html").render(_context(page))
