"""ReportContext -> one self-contained HTML page: a Jinja2 template shipped in the package (autoescape on),
pictures embedded as data URIs, nothing fetched from anywhere."""
from __future__ import annotations

import base64
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from latentspace.report.parts import Figure, ReportContext
from latentspace.utils.files import write_bytes

TEMPLATE = "report.html.j2"


def data_uri(figure: Figure) -> str:
    return f"data:{figure.mime};base64,{base64.b64encode(figure.data).decode('ascii')}"


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("latentspace.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["data_uri"] = data_uri
    return env


def render_html(context: ReportContext) -> str:
    """The page's HTML text."""
    return _environment().get_template(TEMPLATE).render(report=context)


def write_report(context: ReportContext, path: str | Path) -> Path:
    """Render ``context`` and write it to ``path`` atomically (UTF-8)."""
    return write_bytes(path, render_html(context).encode("utf-8"))
