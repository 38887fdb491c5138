"""workbench: teach and explore neural-network pruning interactively.

Example:
    >>> import workbench as wb
    >>> model = wb.pretrained("cnn")
    >>> data = wb.load_dataset("digits")
    >>> wb.evaluate(model, data.test) > 0.98
    True
"""

from . import regularizers
from .data import DATASETS, DatasetSplits, load_dataset
from .devices import resolve_device
from .gradual import GradualPruner
from .iterative import IterativeHistory, iterative_prune
from .lottery import lottery_ticket
from .lottery_history import LotteryHistory, recorded_lottery
from .models import MODELS, build_model, count_parameters
from .pruner import Pruner
from .pruning import prune
from .reports import PruneResult, sparsity_report
from .schedules import SCHEDULES, schedule
from .shrinking import shrink, shrink_with_report
from .storage import load_sparse, save_sparse
from .storage_report import storage_report
from .structure.saving import load_shrunk, save_shrunk
from .studies import StudyRecipe, load_study, study
from .timing import compare_timing
from .train import History, evaluate, fine_tune, predict, train
from .zoo import checkpoint_info, pretrained

__all__ = [
    "DATASETS",
    "MODELS",
    "SCHEDULES",
    "DatasetSplits",
    "GradualPruner",
    "History",
    "IterativeHistory",
    "LotteryHistory",
    "PruneResult",
    "Pruner",
    "StudyRecipe",
    "build_model",
    "checkpoint_info",
    "compare_timing",
    "count_parameters",
    "evaluate",
    "fine_tune",
    "iterative_prune",
    "load_dataset",
    "load_shrunk",
    "load_sparse",
    "load_study",
    "lottery_ticket",
    "predict",
    "pretrained",
    "prune",
    "recorded_lottery",
    "regularizers",
    "resolve_device",
    "save_shrunk",
    "save_sparse",
    "schedule",
    "shrink",
    "shrink_with_report",
    "sparsity_report",
    "storage_report",
    "study",
    "train",
]
__version__ = "0.1.0"
