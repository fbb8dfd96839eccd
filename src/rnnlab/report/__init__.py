"""Reports: plots, row-by-row introspection, report.html, and `predict` for your own pictures."""

from rnnlab.report.page import REPORT, report_folders, write_report, write_summary_report

__all__ = ["REPORT", "report_folders", "write_report", "write_summary_report"]
