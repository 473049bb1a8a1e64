"""``gradient_ascent``: maximise the training loss on the forget set.

Thudi et al. 2022, "Unrolling SGD" (and Jang et al. 2023 for LMs): undo the
forget examples' descent steps by ascending their loss. Unbounded by nature,
so it runs for a fixed, small number of passes with a small learning rate and
clipped gradients; nothing anchors retain behaviour (that is GradDiff / KL).

Defaults were chosen on a documented sweep (Fashion-MNIST MLP, random 10%, seed 0;
see BENCHMARKS.md); a cosine schedule lets retain accuracy recover by the end.

Why it changes almost nothing at these defaults (issue 17; BENCHMARKS.md, "Why some methods do
nothing"): one pass over a small forget set is a handful of steps (4 for a 500-example forget
set at batch 128), and Adam moves each weight by about ``lr`` per step, so 4 steps of 1e-5 under a
cosine decay move a weight by a few 1e-5, against weights of order 1e-2. Larger steps do not help
on random forgetting: the forget examples are drawn from the same distribution as the test set,
and ascending their loss with nothing anchoring retain behaviour raises the loss on every
example alike (the sweep's lr 1e-4 took test accuracy from 0.90 to 0.65). The default is the
least harmful setting of that sweep; the method itself has no way to close a random-forget gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from torch import nn

from obliviate.progress import Progress
from obliviate.removal.approximate._steps import forget_ascent
from obliviate.removal.base import MethodConfig, RemovalMethod, StepBudget, UnlearningTask, register


@dataclass
class GradientAscentConfig(MethodConfig):
    # Oracle-free selection (``bench --tune``; obliviate.tasks.tuning): candidates chosen a priori around the
    # defaults, gentlest first; early stopping on the user-computable targets picks the stopping point.

    # On language-model tasks with the built-in small GPT-2 (the field defaults below are the paper's, for
    # billion-parameter models): chosen on persons seed 0 only, so seeds 1.. of the benchmark are out of
    # sample; a setting that forgets without losing more than ~10% utility where one was found.
    task_defaults: ClassVar[dict[str, dict[str, Any]]] = {"lm": {"epochs": 3.0, "lr": 3e-4, "batch_size": 32}, "lm-pretrained": {"epochs": 5.0, "lr": 5e-5, "batch_size": 8}}
    # The oracle-free selection's candidates on the small LM (--tune; obliviate.tasks.lm_tuning), each run
    # with early stopping on the targets; the task defaults above stay the untuned setting.
    tuning_space: ClassVar[dict[str, dict[str, list[Any]]]] = {
        "classification": {"lr": [3e-5, 1e-4, 3e-4], "epochs": [2.0]},
        "lm": {"lr": [1e-4, 3e-4], "epochs": [3.0, 6.0]}}

    epochs: float = 1.0          # passes over the forget set
    lr: float = 1e-5
    optimizer: str = "adam"
    batch_size: int = 128
    max_grad_norm: float | None = 5.0
    schedule: Literal["constant", "cosine"] = "cosine"  # learning-rate schedule over the run: constant or cosine (decays to 0)


@register
class GradientAscent(RemovalMethod):
    name = "gradient_ascent"
    summary = "Ascend the loss on the forget set (no retain anchor)."
    paper = "Thudi et al. 2022, Unrolling SGD; Jang et al. 2023, Knowledge Unlearning"
    Config = GradientAscentConfig
    tasks = ("classification", "lm")

    def _run(self, model: nn.Module, original: nn.Module, task: UnlearningTask, ctl: StepBudget,
             progress: Progress) -> tuple[nn.Module, dict[str, Any]]:
        return forget_ascent(model, task, self.config, ctl, progress, "gradient_ascent", seed_tags=(0x6A, 0)), {}
