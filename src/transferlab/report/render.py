"""Render report sections into one self-contained HTML document."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from importlib import resources

import jinja2
from markupsafe import Markup

from transferlab.report.document import Section, number_blocks


def _template_text(name: str) -> str:
    return resources.files("transferlab.report").joinpath("templates", name).read_text("utf-8")


def _csp_hash(text: str) -> str:
    """Return the Content-Security-Policy source expression that allows exactly this text."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")


def render_html(
    sections: Sequence[Section], title: str, subtitle: str, footer: str, version: str
) -> str:
    """Return the report as an HTML string; every string from the data is escaped."""
    environment = jinja2.Environment(
        loader=jinja2.FunctionLoader(_template_text),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    css = _template_text("report.css")
    script = _template_text("sort.js")
    number_blocks(sections)
    return environment.get_template("report.html.j2").render(
        sections=sections,
        title=title,
        subtitle=subtitle,
        footer=footer,
        version=version,
        # Our own static files, inserted verbatim; the policy admits them by hash.
        css=Markup(css),
        script=Markup(script),
        style_hash=_csp_hash(css),
        script_hash=_csp_hash(script),
    )
