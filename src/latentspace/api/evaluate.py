"""`evaluate`: the numbers behind every claim of the story, each with the protocol that produced it.

One call measures a run on its own data and caches the result in ``<run>/evaluation.json``, keyed by the
weights and the options, so the CLI table, the report and later commands read one set of numbers:

- reconstruction: test MSE, PSNR and SSIM, the reconstructions' sharpness against the test images' (share of
  high spatial frequencies), ELBO, the importance-weighted NLL bound (Burda et al. 2016), and for
  grey data the same bound on a dynamically binarised test set (the literature's MNIST protocol);
- compression: the model's test MSE at its latent size against PCA with 1..64 components;
- generation: Frechet distance, precision and recall (Kynkaenniemi et al. 2019) of prior and GMM samples in
  the evaluator classifier's feature space, with train-vs-test as the floor a perfect model would reach;
- codes as features: k-NN and logistic-regression accuracy, train codes -> test codes, per label or factor;
- disentanglement (data with known factors): MIG, DCI, SAP (disentanglement_lib's protocols);
- the evaluator's accuracy on real test images and on their reconstructions;
- attribute edits: how often a +2 std edit makes the evaluator see the attribute;
- on the manifold: how well `locate`'s default score tells test images from constructed off-manifold ones
  (noise, flipped, salt and pepper), with the test split's calibration that `locate` and the explorer reuse.

Sections that need labels or factors are None (or empty) for data without them; ``notes`` says why.
"""
from __future__ import annotations

import dataclasses
import logging
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentspace.api import measures
from latentspace.api.common import Device, cached_codes, model_key, open_model, run_evaluator
from latentspace.api.calibration import LocateOptions
from latentspace.api.edits import axis_table, run_directions
from latentspace.api.ood import ManifoldCheck, manifold_check
from latentspace.api.priors import KINDS as PRIOR_KINDS
from latentspace.api.priors import Sampler, sampler_for
from latentspace.api.measures import (
    Compression, Disentanglement, EditSuccess, Generation, HeadAccuracy, Reconstruction,
)  # fmt: skip
from latentspace.latent.codes import decode_latents
from latentspace.latent.diffusion import DiffusionConfig
from latentspace.models import Autoencoder
from latentspace.train.run import Run
from latentspace.metrics.evaluator import shared_from
from latentspace.metrics.probes import ProbeResult
from latentspace.utils.files import read_json, write_json
from latentspace.utils.progress import NULL_PROGRESS, Progress

log = logging.getLogger(__name__)

EVALUATION_FILE = "evaluation.json"
FORMAT = "latentspace.evaluation/5"  # 4: the on-manifold check; 5: SSIM and the high-frequency ratio
PROBE_PROTOCOL = ("codes (posterior means) as features: 5-nearest-neighbour and logistic-regression classifiers "
                  "fitted on train codes (a seeded subsample of at most 20,000), accuracy on all test codes")


@dataclass(frozen=True)
class EvaluateOptions:
    """iw_k: importance samples per image (None: 1000 for images up to 32 px, else 100); iw_n: test images
    in the IW bound; binarized: also the bound on a dynamically binarised test set (grey data); samples:
    images per sampler for generation; edit_strength: stds of the edits judged; diffusion_steps: training steps
    of the latent diffusion prior; ood_k: importance samples of the on-manifold scores (64, as `locate`, so
    they share the calibration); ood_n: test images made off-manifold for the check; seed: every random choice."""

    iw_k: int | None = None
    iw_n: int = 1000
    binarized: bool = False
    samples: int = 2000
    edit_strength: float = 2.0
    diffusion_steps: int = 4000
    ood_k: int = LocateOptions.k
    ood_n: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.iw_k is not None and self.iw_k < 1:
            raise ValueError(f"iw_k must be >= 1 importance samples, got {self.iw_k}")
        if self.iw_n < 1 or self.samples < 2:
            raise ValueError(f"iw_n must be >= 1 and samples >= 2, got {self.iw_n} and {self.samples}")
        if self.diffusion_steps < 1:
            raise ValueError(f"diffusion_steps must be >= 1, got {self.diffusion_steps}")
        if self.ood_k < 1 or self.ood_n < 1:
            raise ValueError(f"ood_k and ood_n must be >= 1, got {self.ood_k} and {self.ood_n}")

    def diffusion(self, latent_dim: int) -> DiffusionConfig:
        """The latent diffusion prior these options fit (stored in the run folder, shared with the report)."""
        return DiffusionConfig(latent_dim=latent_dim, train_steps=self.diffusion_steps, seed=self.seed)

    def resolved(self, image_side: int) -> "EvaluateOptions":
        return self if self.iw_k is not None else dataclasses.replace(self, iw_k=1000 if image_side <= 32 else 100)


@dataclass(frozen=True)
class Evaluation:
    """Everything `evaluate` measured; see the module docstring. None / () where the data cannot say."""

    run: str
    dataset: str
    latent_dim: int
    objective: str
    options: EvaluateOptions
    reconstruction: Reconstruction
    compression: Compression
    probes: tuple[ProbeResult, ...]
    probe_protocol: str
    disentanglement: Disentanglement | None
    evaluator_accuracy: tuple[HeadAccuracy, ...]
    generation: Generation | None
    edits: tuple[EditSuccess, ...]
    manifold: ManifoldCheck
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Evaluation":
        return _build(cls, d)


def _build(tp: Any, value: Any) -> Any:
    """Rebuild a value of type ``tp`` (dataclasses, tuples, optionals, plain values) from its asdict form."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _build(next(a for a in typing.get_args(tp) if a is not type(None)), value)
    if origin is tuple:
        args = typing.get_args(tp)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        return tuple(_build(item or a, v) for a, v in zip(args if item is None else [item] * len(value), value))
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(tp)})
    return value


def _cached(path: Path, key: dict[str, Any]) -> Evaluation | None:
    if not path.is_file():
        return None
    saved = read_json(path)
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    try:
        return Evaluation.from_dict(saved["evaluation"])
    except (KeyError, TypeError, ValueError) as e:
        log.warning("%s: unreadable (%s); measuring again", path, e)
        return None


def cached_evaluation(run_dir: str | Path, options: EvaluateOptions | None = EvaluateOptions()) -> Evaluation | None:
    """The evaluation stored in the run folder for these options (None: whatever options it was measured with)
    and the current weights, else None."""
    run, _ = open_model(run_dir, "cpu")
    if options is None:
        saved = read_json(run.path / EVALUATION_FILE) if (run.path / EVALUATION_FILE).is_file() else None
        stored = saved.get("key", {}).get("options") if isinstance(saved, dict) else None
        if not isinstance(stored, dict):
            return None
        try:
            options = EvaluateOptions(**stored)
        except (TypeError, ValueError):
            return None
    opts = options.resolved(run.model_config.image_shape[1])
    return _cached(run.path / EVALUATION_FILE, _key(run, opts))


def _key(run, options: EvaluateOptions) -> dict[str, Any]:
    return {"format": FORMAT, "options": dataclasses.asdict(options), **model_key(run)}


def evaluate(
    run_dir: str | Path, options: EvaluateOptions = EvaluateOptions(), device: Device = "cpu",
    progress: Progress = NULL_PROGRESS, refresh: bool = False,
) -> Evaluation:
    """Measure the run (see the module docstring), or return the measurement cached for these options and
    weights in ``<run>/evaluation.json`` (``refresh`` measures again)."""
    run, model = open_model(run_dir, device)
    opts = options.resolved(run.model_config.image_shape[1])
    path, key = run.path / EVALUATION_FILE, _key(run, opts)
    if not refresh and (saved := _cached(path, key)) is not None:
        log.info("reusing %s", path)
        return saved
    result = _measure(run, model, opts, progress)
    write_json(path, {"key": key, "evaluation": result.to_dict()})
    return result


SAMPLER_NAMES = {"prior": "prior N(0, I)", "gmm": "GMM", "diffusion": "latent diffusion"}


def generation_samplers(run: Run, model: Autoencoder, opts: EvaluateOptions,
                        progress: Progress = NULL_PROGRESS) -> list[tuple[str, Sampler]]:
    """(display name, sampler) of every prior kind, learned ones fitted (or read back) as these options say."""
    diffusion = opts.diffusion(model.config.latent_dim)
    return [(sampler_name(model, k), sampler_for(run, model, k, seed=opts.seed, diffusion=diffusion,
                                                progress=progress)) for k in PRIOR_KINDS]


def sampler_name(model: Autoencoder, kind: str) -> str:
    """The display name of a sampler kind; 'prior' names the model's own p(z)."""
    return f"prior {model.prior.title}" if kind == "prior" else SAMPLER_NAMES[kind]


def _measure(run, model, opts: EvaluateOptions, progress: Progress) -> Evaluation:
    train, z_train = cached_codes(run, model, "train", progress)
    test, z_test = cached_codes(run, model, "test", progress)
    notes: list[str] = []
    recon = decode_latents(model, z_test)
    rec = measures.reconstruction(model, test, recon, opts.iw_k, opts.iw_n, opts.binarized, opts.seed, progress)
    if not model.config.is_variational:
        notes.append(f"no IW bound: a {model.config.objective} posterior is a point mass, with no density to weigh "
                     "samples by (the ELBO's KL is 0 or, for a codebook, the constant log K per group)")
    comp = measures.compression(train, test, model.config.latent_dim, rec.mse, opts.seed)
    probes = measures.probes(train, test, z_train, z_test, opts.seed)
    table = axis_table(test, z_test)
    dis = None
    if table is not None and test.factors is not None and model.config.latent_dim >= 2:
        dis = measures.disentanglement(train, test, z_train, z_test, table.mig, opts.seed)
    else:
        notes.append("no known factors of variation: no MIG, DCI or SAP")
    evaluator = run_evaluator(run, model, train, test, progress) if probes else None
    accuracy, gen, edits = (), None, ()
    if evaluator is None:
        notes.append("no labels or discrete factors: no probes, evaluator, sample quality or edit success")
    else:
        if (owner := shared_from(run.path)) is not None:
            notes.append(f"the evaluator classifier is {owner}'s, trained on the same data, reused rather than trained")
        accuracy = measures.evaluator_accuracy(evaluator, test, recon)
        gen = measures.generation(model, train, test, evaluator, generation_samplers(run, model, opts, progress),
                                  opts.samples, opts.seed)
        edits = measures.edit_successes(model, test, z_test, evaluator, run_directions(run, model),
                                        opts.edit_strength, seed=opts.seed, recon=recon)
    check = manifold_check(run, model, LocateOptions(k=opts.ood_k, seed=opts.seed), opts.ood_n, opts.seed, progress)
    cfg = model.config
    return Evaluation(str(run.path), test.name, cfg.latent_dim, cfg.objective, opts, rec, comp, probes,
                      PROBE_PROTOCOL, dis, accuracy, gen, edits, check, tuple(notes))


@dataclass(frozen=True)
class Row:
    """One printable line of the evaluation table: section, what, value (formatted), and which way is better."""

    section: str
    measure: str
    value: str
    better: str = ""


def _f(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def evaluation_rows(ev: Evaluation) -> list[Row]:
    """The evaluation as table rows, in the story's order (the CLI table and the report's table)."""
    r, c = ev.reconstruction, ev.compression
    rows = [Row("reconstruction", "test MSE per pixel", _f(r.mse, 5), "lower"),
            Row("reconstruction", "test PSNR, dB", _f(r.psnr_db, 2), "higher"),
            Row("reconstruction", "test SSIM", _f(r.ssim, 4), "higher"),
            Row("reconstruction", "high-frequency ratio, reconstructions / test images", _f(r.hf_ratio, 3),
                "closer to 1"),
            Row("reconstruction", "test ELBO, nats", _f(r.elbo_nats, 2), "higher")]
    if r.iw_nll_nats is not None:
        rows.append(Row("reconstruction", f"IW NLL bound, k={r.iw_k}, nats", _f(r.iw_nll_nats, 2), "lower"))
    if r.binarized_iw_nll_nats is not None:
        rows.append(Row("reconstruction", f"binarised IW NLL, k={r.iw_k}, nats", _f(r.binarized_iw_nll_nats, 2),
                        "lower"))
    match = "more than 64" if c.pca_to_match is None else str(c.pca_to_match)
    rows += [Row("compression", f"PCA size as good as the {c.latent_dim}-d model", match, "higher"),
             Row("compression", f"PCA-{c.latent_dim} test MSE (model {c.model_mse:.5f})",
                 _f(_pca_at(c, c.latent_dim), 5), "")]
    rows += [Row("codes as features", f"{p.target}: k-NN / logistic (chance {p.majority_accuracy:.2f})",
                 f"{p.knn_accuracy:.3f} / {p.logistic_accuracy:.3f}", "higher") for p in ev.probes]
    if ev.disentanglement is not None:
        d = ev.disentanglement
        rows += [Row("disentanglement", "MIG", _f(d.mig), "higher"),
                 Row("disentanglement", "DCI: disentanglement / completeness / informativeness",
                     f"{d.dci_disentanglement:.3f} / {d.dci_completeness:.3f} / {d.dci_informativeness:.3f}", "higher"),
                 Row("disentanglement", "SAP", _f(d.sap), "higher")]
    rows += [Row("evaluator", f"{a.head}: accuracy on real / reconstructed", f"{a.real:.3f} / {a.reconstructed:.3f}",
                 "higher") for a in ev.evaluator_accuracy]
    if ev.generation is not None:
        for s in (*ev.generation.samplers, ev.generation.floor):
            rows.append(Row("generation", f"{s.name}: FD / precision / recall",
                            f"{s.frechet:.2f} / {s.precision:.3f} / {s.recall:.3f}", "lower / higher"))
    rows += [Row(f"edits, +{e.strength:g} std", f"{e.attribute}: P > 0.5 before -> after",
                 f"{e.already:.3f} -> {e.success:.3f}", "higher after") for e in ev.edits]
    m = ev.manifold
    rows += [Row("on the manifold", f"{s.name}: AUROC / called off by '{m.score}'",
                 f"{s.auroc:.3f} / {s.called_off:.3f}", "higher") for s in m.sets]
    return rows


def _pca_at(c: Compression, k: int) -> float | None:
    return dict(zip(c.pca.components, c.pca.mse)).get(k)


def protocols(ev: Evaluation) -> dict[str, str]:
    """Section -> how its numbers were measured."""
    out = {"reconstruction": ev.reconstruction.protocol, "compression": ev.compression.protocol}
    if ev.probes:
        out["codes as features"] = ev.probe_protocol
    if ev.disentanglement is not None:
        out["disentanglement"] = ev.disentanglement.protocol
    if ev.evaluator_accuracy:
        out["evaluator"] = "argmax of each evaluator head on the test images and on their reconstructions"
    if ev.generation is not None:
        out["generation"] = ev.generation.protocol
    if ev.edits:
        out["edits"] = ("test images lacking the attribute (at most 500, seeded), posterior mean moved along the "
                        "attribute's direction, decoded, judged by the evaluator head of that attribute")
    out["on the manifold"] = ev.manifold.protocol
    return out
