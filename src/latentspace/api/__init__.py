"""Run-level verbs: one call from a run folder to the arrays and tables each latent operation gives.

Every function here takes a run folder (written by `latentspace train`), loads what it needs and returns
arrays or frozen dataclasses; the CLI, the report and the explorer only call these and present the result.
Nothing is written except caches beside the run, each keyed so that it is rebuilt when the model changes
(``codes_<split>.safetensors``, ``gmm.json``, ``evaluator/``, ``evaluation.json``). ``export`` writes the
projector files to the folder it is given: writing them is what it is for.

One module per verb family: common (open a run, read an image, cached codes), paths (interpolation), maps
(manifold, evolution), edits (attributes, edits, traversals), describe and draw (an image in words, images from
words), export (projector, GMM sampler), evaluate, locate and ood.
"""
from __future__ import annotations

from latentspace.api.common import (
    CODES_FORMAT, Device, ImageRef, cached_codes, codes_path, colouring, image_ref, load, model_key, open_model,
    read_image, resolve_image, run_evaluator, split_codes,
)  # fmt: skip
from latentspace.api.edits import (
    DIRECTIONS_FILE, AttributeFit, TraverseResult, attributes, axis_table, edit, run_directions,
    save_run_directions, saved_directions, traverse,
)  # fmt: skip
from latentspace.api.describing import (
    READERS_FILE, Description, describe, describe_codes, fitted_readers, run_vocabulary,
)  # fmt: skip
from latentspace.api.drawing import (
    CONDITIONAL_META, CONDITIONAL_WEIGHTS, DRAW_METHODS, DrawResult, draw, draw_codes, fitted_conditional,
)  # fmt: skip
from latentspace.api.export import (
    ExportResult, export, export_onnx_model, projector_metadata,
)  # fmt: skip
from latentspace.api.stream import (
    StreamResult, encode_folder,
)  # fmt: skip
from latentspace.api.priors import (
    DIFFUSION_META, DIFFUSION_WEIGHTS, GMM_FILE, KINDS as PRIOR_KINDS, fitted_diffusion, fitted_gmm,
    gmm_sampler, prior, sampler_for,
)  # fmt: skip
from latentspace.api.maps import (
    MAX_EMBED_POINTS, CodeMap, ManifoldGrid, ManifoldResult, MapChoice, best_map, default_anchors, evolution,
    manifold,
)  # fmt: skip
from latentspace.api.paths import (
    MIDDLE, InterpolationResult, interpolate, interpolation_table,
)  # fmt: skip
from latentspace.api.evaluate import (
    EVALUATION_FILE, EvaluateOptions, Evaluation, cached_evaluation, evaluate,
)  # fmt: skip
from latentspace.api.points import (
    MAP_METHODS, MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS, ImageTooLarge, LatentMap, Neighbours, NotAnImage,
    cached_evaluator, cached_map, code_map, moved_code, nearest_train, read_image_bytes,
)  # fmt: skip
from latentspace.api.calibration import (
    CALIBRATION_FILE, DEFAULT_SCORE, FRAMING_FILE, Calibration, LocateOptions, calibration, fitted_framing,
)  # fmt: skip
from latentspace.api.locate import (
    LocateResult, Location, ScoreReading, image_source, locate, locate_images,
)  # fmt: skip
from latentspace.api.ood import (
    OODResult, ood, other_images,
)  # fmt: skip
from latentspace.latent.evolution import EvolutionResult
from latentspace.train.run import open_run

# One entry per name, grouped as imported above.
__all__ = [
    "CODES_FORMAT", "Device", "ImageRef", "cached_codes", "codes_path", "colouring", "image_ref", "load",
    "model_key", "open_model", "read_image", "resolve_image", "run_evaluator", "split_codes",
    "DIRECTIONS_FILE", "AttributeFit", "TraverseResult", "attributes", "axis_table", "edit", "run_directions",
    "save_run_directions", "saved_directions", "traverse",
    "READERS_FILE", "Description", "describe", "describe_codes", "fitted_readers", "run_vocabulary",
    "CONDITIONAL_META", "CONDITIONAL_WEIGHTS", "DRAW_METHODS", "DrawResult", "draw", "draw_codes",
    "fitted_conditional",
    "ExportResult", "export", "export_onnx_model", "projector_metadata",
    "StreamResult", "encode_folder",
    "DIFFUSION_META", "DIFFUSION_WEIGHTS", "GMM_FILE", "PRIOR_KINDS", "fitted_diffusion", "fitted_gmm",
    "gmm_sampler", "prior", "sampler_for",
    "MAX_EMBED_POINTS", "CodeMap", "ManifoldGrid", "ManifoldResult", "MapChoice", "best_map", "default_anchors",
    "evolution", "manifold",
    "MIDDLE", "InterpolationResult", "interpolate", "interpolation_table",
    "EVALUATION_FILE", "EvaluateOptions", "Evaluation", "cached_evaluation", "evaluate",
    "MAP_METHODS", "MAX_UPLOAD_BYTES", "MAX_UPLOAD_PIXELS", "ImageTooLarge", "LatentMap", "Neighbours",
    "NotAnImage", "cached_evaluator", "cached_map", "code_map", "moved_code", "nearest_train",
    "read_image_bytes",
    "CALIBRATION_FILE", "DEFAULT_SCORE", "FRAMING_FILE", "Calibration", "LocateOptions", "calibration",
    "fitted_framing",
    "LocateResult", "Location", "ScoreReading", "image_source", "locate", "locate_images",
    "OODResult", "ood", "other_images",
    "EvolutionResult", "open_run",
]
