"""Multiple-choice log-likelihood scoring of many model states, identical to lm-eval's numbers.

``score`` takes a loaded base model, model states (the base and PEFT adapters) and target items;
``evaluate_command`` is the ``transferlab evaluate`` command around it.
"""

from transferlab.metrics import choose
from transferlab.scoring.adapters import ModelState, adapter_hash
from transferlab.scoring.command import evaluate_command
from transferlab.scoring.scorer import ItemResult, score

__all__ = ["ItemResult", "ModelState", "adapter_hash", "choose", "evaluate_command", "score"]
