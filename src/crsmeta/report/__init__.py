"""The HTML report: tidy tables (``tables``), figures (``plots``) and rendering (``render``)."""

from crsmeta.report.render import ReportInputs, render_report

__all__ = ["ReportInputs", "render_report"]
