"""OPE evaluation: metrics under named protocols (and cAUC / mACC), results files, plots, per-attribute tables
(and COST's derived attributes) and reports."""
from asearch.evaluation.attributes import attribute_table, average_relative_speed, is_small_object
from asearch.evaluation.extra_metrics import complete_iou, complete_success, mean_accuracy
from asearch.evaluation.metrics import DEFAULT_PROTOCOLS, PROTOCOLS, OPEMetric, center_error, default_protocol, iou, ope
from asearch.evaluation.plots import plot_curves, plot_norm_precision, plot_precision, plot_success
from asearch.evaluation.report import evaluate_trackers, load_sequences, render_report, write_evaluation, write_report
from asearch.evaluation.results import read_results, read_speed, results_done, results_path, write_results

__all__ = [
    "ope", "OPEMetric", "iou", "center_error", "PROTOCOLS", "DEFAULT_PROTOCOLS", "default_protocol",
    "write_results", "read_results", "results_done", "results_path", "read_speed",
    "plot_curves", "plot_success", "plot_precision", "plot_norm_precision", "attribute_table",
    "evaluate_trackers", "load_sequences", "write_evaluation", "render_report", "write_report",
    "complete_iou", "complete_success", "mean_accuracy", "average_relative_speed", "is_small_object",
]
