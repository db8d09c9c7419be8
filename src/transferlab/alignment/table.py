"""The alignment table's file name and columns, shared by `transferlab align`, runs and reports."""

ALIGNMENT_FILE = "alignment.csv"
COLUMNS = [
    "model_state", "source_language", "target_language", "layer", "method", "retrieval",
    "p1", "p5", "p10", "mrr", "n_test",
]  # fmt: skip
