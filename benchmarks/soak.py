"""kill -9 soak: many random SIGKILLs during `latentspace train`, each followed by `--resume`, then a bit-for-bit
comparison with an uninterrupted run (issue 11). Prints kills, resumes, whether weights and per-epoch test ELBO
are identical, and the target beside each.

    python benchmarks/soak.py --kills 25 [--seed 0] [--ddp]

--ddp launches every command through `torchrun --standalone --nproc_per_node 2`, killing the whole process group.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from soak import SCRIPT, run_uninterrupted, soak  # noqa: E402

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
            "latentspace", "--"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ddp", action="store_true", help="train with torchrun, 2 processes")
    args = parser.parse_args()
    launcher = TORCHRUN if args.ddp else SCRIPT
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference"
        run_uninterrupted(reference, launcher)
        window = (4.0, 14.0) if args.ddp else (2.0, 9.0)
        result = soak(Path(tmp) / "soaked", reference, args.kills, args.seed, launcher, window=window)
    print(f"launcher: {'torchrun x2' if args.ddp else 'latentspace'}; seed {args.seed}")
    print(f"kills before a run had finished: {result.kills} (asked {args.kills}); runs trained through kills: "
          f"{result.runs}; train commands started: {result.commands}; wall {result.wall_s:.0f} s")
    print(f"identical weights: {result.identical_weights}   target: True")
    print(f"identical per-epoch test ELBO: {result.identical_metrics}   target: True")
    sys.exit(0 if result.identical_weights and result.identical_metrics else 1)


if __name__ == "__main__":
    main()
