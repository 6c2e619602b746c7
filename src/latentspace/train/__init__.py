"""Training: TrainConfig, the run folder, checkpoints and the loop (train_step / evaluate / fit)."""
from __future__ import annotations

from latentspace.train.checkpoint import TrainerState, load_trainer_state, save_trainer_state
from latentspace.train.config import TrainConfig
from latentspace.train.ledger import TrainingDiverged
from latentspace.train.loop import FitResult, fit
from latentspace.train.schedule import kl_weight_at, lr_at
from latentspace.train.step import EvalResult, evaluate, train_step
from latentspace.train.run import Run, is_run_folder, open_run

__all__ = [
    "TrainConfig", "Run", "open_run", "is_run_folder", "fit", "FitResult", "train_step", "evaluate", "EvalResult",
    "lr_at", "kl_weight_at", "TrainerState", "save_trainer_state", "load_trainer_state", "TrainingDiverged",
]
