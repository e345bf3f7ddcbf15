"""One worker process of a parallel search (``kerascnn tune --workers N``): runs the trials the
chief's oracle hands out, found through KerasTuner's environment variables
(``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``).

    python -m kerascnn.tuning.worker runs/tune/NAME
"""

from __future__ import annotations

import sys
from pathlib import Path

from kerascnn.tuning.search import TrainingTuner, load_plan


def main(argv: list[str] | None = None) -> None:
    (directory,) = argv if argv is not None else sys.argv[1:]
    plan = load_plan(Path(directory))
    TrainingTuner(plan, lambda line: print(line, flush=True)).search(verbose=0)


if __name__ == "__main__":
    main()
