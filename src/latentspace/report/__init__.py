"""The report: one self-contained HTML page that tells a run's whole story with numbers under every picture.

``build_context(run_dir)`` gathers a frozen ReportContext through the api functions (report.context, with the
sections in report.sections and report.measured); ``write_report(context, path)`` renders it with the
package's Jinja2 template (report.render)."""
from __future__ import annotations

from latentspace.report.context import build_context
from latentspace.report.parts import Figure, ReportContext, Section, Table
from latentspace.report.render import render_html, write_report

__all__ = ["build_context", "Figure", "ReportContext", "Section", "Table", "render_html", "write_report"]
