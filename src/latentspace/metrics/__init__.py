"""Metrics: likelihood bounds, the evaluator classifier, realness of interpolation paths, disentanglement (MIG,
DCI, SAP), Fréchet distance, precision/recall, sharpness (high-frequency share), SSIM, code probes and the PCA
compression baseline."""
from __future__ import annotations

from latentspace.metrics.compression import PCA_COMPONENTS, CompressionCurve, pca_curve
from latentspace.metrics.dci import DCIResult, dci
from latentspace.metrics.disentanglement import (
    AxisFactorTable,
    axis_factor_table,
    mig,
    mutual_information_matrix,
    normalized_mi,
)
from latentspace.metrics.evaluator import (
    LABEL_HEAD,
    Evaluator,
    EvaluatorConfig,
    Head,
    build_evaluator,
    dataset_heads,
    evaluator_for_run,
    load_evaluator,
    save_evaluator,
    train_evaluator,
)
from latentspace.metrics.fidelity import PrecisionRecall, precision_recall
from latentspace.metrics.frechet import frechet_distance
from latentspace.metrics.likelihood import (
    ElboResult,
    IWResult,
    bits_per_dim,
    elbo_nats,
    importance_weighted_nll,
    per_image_elbo,
)
from latentspace.metrics.probes import ProbeResult, code_probes
from latentspace.metrics.realness import (
    PathSummary,
    RealnessScores,
    RealnessTable,
    nearest_distance,
    on_manifold,
    pair_table,
    path_realness,
    realness_scores,
)
from latentspace.metrics.sap import sap
from latentspace.metrics.sharpness import hf_ratio, hf_share, hf_shares
from latentspace.metrics.structure import mean_ssim, ssim

__all__ = [
    "AxisFactorTable", "axis_factor_table", "mig", "mutual_information_matrix", "normalized_mi",
    "LABEL_HEAD", "Evaluator", "EvaluatorConfig", "Head", "build_evaluator", "dataset_heads", "evaluator_for_run",
    "load_evaluator", "save_evaluator", "train_evaluator",
    "ElboResult", "IWResult", "bits_per_dim", "elbo_nats", "importance_weighted_nll", "per_image_elbo",
    "PathSummary", "RealnessScores", "RealnessTable", "nearest_distance", "on_manifold", "pair_table",
    "path_realness", "realness_scores", "hf_ratio", "hf_share", "hf_shares", "mean_ssim", "ssim",
    "PCA_COMPONENTS", "CompressionCurve", "pca_curve", "DCIResult", "dci", "PrecisionRecall", "precision_recall",
    "frechet_distance", "ProbeResult", "code_probes", "sap",
]
from latentspace.metrics.ood import (
    ALL_SCORES, COMBINED, COMBINED_FROM, SCORE_NAMES, SCORES, ManifoldScores, code_density_score, combined_score,
    complexity_corrected_nll, iw_nll, log_tail_probability, manifold_scores, percentile_of, png_bits,
    reconstruction_error, tail_scale,
)  # fmt: skip
from latentspace.metrics.separation import Separation, aupr, auroc, fpr_at_tpr, separation

__all__ += [
    "ALL_SCORES", "COMBINED", "COMBINED_FROM", "SCORE_NAMES", "SCORES", "ManifoldScores", "code_density_score",
    "combined_score", "complexity_corrected_nll", "iw_nll", "log_tail_probability", "manifold_scores", "percentile_of",
    "png_bits", "reconstruction_error", "tail_scale", "Separation", "aupr", "auroc",
    "fpr_at_tpr", "separation",
]
