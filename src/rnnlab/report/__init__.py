"""Reports: plots, row-by-row introspection, report.html, and `predict` for your own pictures."""

from rnnlab.report.page import REPORT, write_report

__all__ = ["REPORT", "write_report"]
