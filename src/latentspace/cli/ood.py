"""`latentspace ood`: does the model know its own images? AUROC, AUPR and FPR at 95% TPR of every on-manifold
score, separating the run's test split from another data set (a name or a folder, resized to the run's shape)."""
from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from latentspace import api
from latentspace.api.ood import OODResult
from latentspace.cli.console import RichProgress
from latentspace.cli.encode import DataDirOpt, DeviceOpt, RunArg, SeedOpt
from latentspace.cli.locate import JsonOpt, KOpt, options
from latentspace.metrics.ood import SCORE_NAMES
from latentspace.utils.device import pick_device
from latentspace.utils.files import write_atomic

out = Console()


def ood_table(result: OODResult) -> Table:
    table = Table(title=f"{result.dataset} test split ({result.n_test}) against {result.other} ({result.n_other}): "
                        f"{result.run}", title_justify="left")
    for name, justify in (("score", "left"), ("AUROC", "right"), ("AUPR", "right"), ("FPR at 95% TPR", "right"),
                          ("called off", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    for name, s in result.separations.items():
        table.add_row(SCORE_NAMES[name], f"{s.auroc:.3f}", f"{s.aupr:.3f}", f"{s.fpr_at_tpr:.3f}",
                      f"{result.called_off[name]:.1%}", "default" if name == result.default else "")
    return table


def ood_command(
    run_dir: RunArg,
    data: Annotated[str, typer.Option("--data", help="The other images: a dataset name (its test split) or an "
                                      "image folder, resized to the run's image shape.")],
    n: Annotated[int | None, typer.Option("--n", help="At most this many other images (the first N).")] = None,
    split: Annotated[str | None, typer.Option("--split", help="train or test of a dataset (default: test; all "
                                              "images of a folder).")] = None,
    json_path: JsonOpt = None,
    k: KOpt = 64,
    seed: SeedOpt = 0,
    data_dir: DataDirOpt = None,
    device: DeviceOpt = "auto",
) -> None:
    """Measure how well each score tells the run's test images from other images (1.0 = perfectly, 0.5 = not
    at all): the evidence that the model learned the manifold of its data.

    Scores (higher = more off the manifold): the IWAE NLL, the NLL corrected for input complexity (minus the
    PNG length), -log density of the code under the run's GMM, the reconstruction error, the framing (how far
    the image's ink, centre of mass, spread and slant are from the training images'), and the combination of
    the last four (the default, behind the verdict of `latentspace locate`). The test split's scores are
    cached in RUN/ood_calibration.safetensors."""
    if n is not None and n < 1:
        raise typer.BadParameter(f"expected a positive number of images, got {n}", param_hint="--n")
    opts = options(k, seed, 99.0, 1, api.DEFAULT_SCORE)
    result = api.ood(run_dir, data, opts, n=n, split=split, data_dir=data_dir, device=pick_device(device),
                     progress=RichProgress())
    if json_path is not None:
        text = json.dumps(result.to_dict(), indent=2)
        if str(json_path) == "-":
            print(text)
            return
        write_atomic(json_path, lambda p: p.write_text(text + "\n", encoding="utf-8"))
    out.print(ood_table(result))
    out.print("AUROC: chance that an other image scores as more off the manifold than a test image (1 = always, "
              "0.5 = chance). AUPR: other images as positives. FPR at 95% TPR: test images flagged when 95% of "
              f"the others are. Called off: other images above the score's {result.options.percentile:g}th "
              "percentile on the test split, as `latentspace locate` judges (1% of test images are).",
              markup=False, highlight=False, soft_wrap=True)
    if json_path is not None:
        out.print(f"wrote {json_path}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.command("ood")(ood_command)
