"""Results table → the reference study's tables and figures (pure functions; I/O in `command`)."""

from transferlab.analysis.command import analyze_results, export_results, read_results
from transferlab.analysis.result import AnalysisResult, run_analysis
from transferlab.analysis.schema import ResultsTable, table_from_frame

__all__ = [
    "AnalysisResult",
    "ResultsTable",
    "analyze_results",
    "export_results",
    "read_results",
    "run_analysis",
    "table_from_frame",
]
