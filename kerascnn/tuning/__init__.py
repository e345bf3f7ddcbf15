"""Hyperparameter search over ``TrainConfig`` fields with KerasTuner's oracles, each trial an
ordinary run (``search``), over a space parsed from ``FIELD=KIND:ARGUMENTS`` (``space``)."""

from kerascnn.tuning.search import (
    METHODS,
    SearchPlan,
    SearchResult,
    TrialRow,
    plan_refined,
    plan_search,
    run_search,
)
from kerascnn.tuning.space import Dimension, parse_dimension, parse_space, refine

__all__ = [
    "METHODS",
    "Dimension",
    "SearchPlan",
    "SearchResult",
    "TrialRow",
    "parse_dimension",
    "parse_space",
    "plan_refined",
    "plan_search",
    "refine",
    "run_search",
]
