"""The report as data: sections of figures, tables, facts and notices, ready for the template."""

from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from matplotlib.figure import Figure as MplFigure

# Classes a table cell may carry; anything else is a programming error, never user data.
CELL_CLASSES = frozenset({"num", "gain", "harm", "weak"})


@dataclass(frozen=True)
class TableCell:
    """One table cell: the text shown, the key it sorts by, and its style classes."""

    text: str
    sort: str | None = None
    css: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.css.split()) - CELL_CLASSES
        if unknown:
            raise ValueError(f"unknown cell classes {sorted(unknown)}")


@dataclass(frozen=True)
class Column:
    """A table column: its header, whether it sorts numerically, and a tooltip."""

    label: str
    numeric: bool = False
    help: str = ""


@dataclass
class Table:
    """A captioned, sortable table."""

    id: str
    caption: str
    columns: list[Column]
    rows: list[list[TableCell]]
    toc: str = ""
    sortable: bool = True
    number: int = 0
    kind: str = "table"


@dataclass
class Figure:
    """A captioned figure embedded as a data URI (SVG), so the HTML file stands alone."""

    id: str
    caption: str
    src: str
    alt: str
    width: int
    height: int
    toc: str = ""
    number: int = 0
    kind: str = "figure"


@dataclass
class Facts:
    """A list of term/value pairs (the study summary)."""

    id: str
    items: list[tuple[str, str]]
    toc: str = ""
    kind: str = "facts"


@dataclass
class Notice:
    """A highlighted message with an optional list (failed jobs, missing cells)."""

    id: str
    text: str
    items: list[str] = field(default_factory=list)
    ok: bool = False
    toc: str = ""
    kind: str = "notice"


Block = Table | Figure | Facts | Notice


@dataclass
class Section:
    """A numbered section of the report with an optional introduction."""

    id: str
    title: str
    blocks: list[Block]
    intro: list[str] = field(default_factory=list)


def number_blocks(sections: Sequence[Section]) -> None:
    """Number figures and tables in reading order (in place)."""
    counts = {"figure": 0, "table": 0}
    for section in sections:
        for block in section.blocks:
            if block.kind in counts:
                counts[block.kind] += 1
                block.number = counts[block.kind]


def slug(text: str) -> str:
    """Return an HTML id made of lowercase letters, digits and hyphens."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def embed_figure(
    figure: MplFigure, id: str, caption: str, alt: str, toc: str = "", dpi: int = 96
) -> Figure:
    """Return the matplotlib figure as an embedded SVG block.

    SVG in an <img> is rendered as an isolated image: its ids cannot clash with other figures,
    and its text (which matplotlib copies into comments) can never run as script.
    """
    import matplotlib

    buffer = io.BytesIO()
    # A fixed hash salt and no date make the same data give byte-identical reports.
    with matplotlib.rc_context({"svg.hashsalt": "transferlab", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, dpi=dpi)
    svg = buffer.getvalue()
    width, height = _svg_size_px(svg)
    src = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return Figure(id=id, caption=caption, src=src, alt=alt, width=width, height=height, toc=toc)


def _svg_size_px(svg: bytes) -> tuple[int, int]:
    """Return the SVG's width and height in CSS pixels (matplotlib writes points)."""
    head = svg[:2000].decode("utf-8", "replace")
    sizes = []
    for name in ("width", "height"):
        match = re.search(rf'<svg[^>]*\s{name}="([\d.]+)(pt|px)?"', head, re.S)
        value = float(match.group(1)) if match else 400.0
        unit = match.group(2) if match else "px"
        sizes.append(round(value * (96 / 72) if unit == "pt" else value))
    return sizes[0], sizes[1]


def is_missing(value: Any) -> bool:
    """Return whether a table value is missing (None or NaN)."""
    if value is None:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def text_cell(value: Any) -> TableCell:
    """Return a cell that shows and sorts by the value's text."""
    text = "—" if is_missing(value) else str(value)
    return TableCell(text=text, sort=None if text != "—" else "")


def number_cell(
    value: Any, digits: int = 2, signed: bool = False, tone: bool = False, suffix: str = ""
) -> TableCell:
    """Return a right-aligned number cell; `tone` colours gains and harms (Δ ≤ −1 pp)."""
    if is_missing(value):
        return TableCell(text="—", sort="", css="num")
    number = float(value)
    text = f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"
    css = "num"
    if tone and number > 0:
        css += " gain"
    elif tone and number <= -1.0:
        css += " harm"
    return TableCell(text=minus(text) + suffix, sort=repr(number), css=css)


def interval_cell(low: Any, high: Any, digits: int = 2) -> TableCell:
    """Return a cell showing a confidence interval "[low, high]", sorted by its lower end."""
    if is_missing(low) or is_missing(high):
        return TableCell(text="—", sort="", css="num")
    text = f"[{float(low):+.{digits}f}, {float(high):+.{digits}f}]"
    return TableCell(text=minus(text), sort=repr(float(low)), css="num")


def minus(text: str) -> str:
    """Return text with ASCII hyphen-minus signs replaced by the typographic minus."""
    return re.sub(r"-(?=\d)", "\u2212", text)


def frame_rows(frame: Any, makers: Sequence[Callable[[Any], TableCell]]) -> list[list[TableCell]]:
    """Return table rows built by applying one cell maker per column to each record."""
    records = frame.to_dict("records")
    return [[make(record) for make in makers] for record in records]
