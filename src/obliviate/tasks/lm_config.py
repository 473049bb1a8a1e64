"""Configuration of a language-model unlearning benchmark (``obliviate bench --task persons|tofu``).

Defaults are sized so one seed of the persons task (200 people, forget 10%,
every method, every metric and attack) runs in about a quarter of an hour on
two CPU cores: a 2-layer, 128-wide GPT-2 with a 4,096-token BPE vocabulary,
trained for 40 epochs (see ``benchmarks/results/lm.md`` for measured times).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from obliviate.config import StrictModel
from obliviate.models.lm import GPT2Spec
from obliviate.tasks.base import RecipeFields, RunConfig
from obliviate.training.lm import LMRecipe

# Splits of the TOFU task (forget share in percent).
TOFU_FORGET_SPLITS = ("forget01", "forget05", "forget10")


class GPT2Config(StrictModel):
    """The built-in GPT-2 trained from scratch (ignored with ``model_path``)."""

    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    n_positions: int | None = None   # None: long enough for the longest encoded example
    vocab_size: int = 4096           # BPE merges trained on the task's texts

    def spec(self, n_positions: int) -> GPT2Spec:
        return GPT2Spec(n_layer=self.n_layer, n_embd=self.n_embd, n_head=self.n_head,
                        n_positions=self.n_positions or n_positions)


class LMRecipeConfig(RecipeFields):
    """Overrides of the task's default recipe (None keeps the default)."""

    warmup_fraction: float | None = None
    max_grad_norm: float | None = None
    context_fraction: float | None = None
    context_size: int | None = None

    def resolve(self, defaults: dict[str, Any]) -> LMRecipe:
        return LMRecipe(**{**defaults, **self.overrides()})


class PersonsSection(StrictModel):
    """The fictitious-persons corpus (``obliviate.data.persons``); ``seed`` None = the run seed.

    ``n_tuning``: people never trained on whom the oracle-free selection (``tune``) compares
    the forget set with, apart from the evaluated holdout people; None: as many as the forget
    people with ``tune``, none without (they are drawn after everyone else, and their texts
    join the tokenizer's only when they exist).
    """

    n_people: int = 200
    forget_fraction: float = 0.1
    n_perturbed: int = 5
    n_shared: int = 3
    seed: int | None = None
    n_tuning: int | None = Field(default=None, ge=0)


class EvalConfig(StrictModel):
    """What is measured, and on how many examples.

    max_examples: cap per evaluated split other than forget (a seeded sample;
    the forget set is always evaluated whole, as forget quality needs it).
    n_boot: bootstrap resamples for the 95% intervals. mia_k: the k of Min-K% and Min-K%++.
    """

    max_examples: int | None = 360
    n_boot: int = 200
    mia_k: float = 0.2
    batch_size: int = 64
    verbatim: bool = True


class RelearnSection(StrictModel):
    enabled: bool = True
    steps: int = 20
    lr: float = 1e-3
    batch_size: int = 16
    fraction: float = 0.5


class ICLSection(StrictModel):
    enabled: bool = True
    n_context: int = 2
    max_questions: int | None = 120


class AttacksConfig(StrictModel):
    relearn: RelearnSection = Field(default_factory=RelearnSection)
    icl: ICLSection = Field(default_factory=ICLSection)


class LoRASection(StrictModel):
    """Unlearn through LoRA adapters (``peft``) instead of all weights; merged before evaluation."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] | None = None   # None: peft's default for the architecture


# Pre-trained models that ``--model NAME`` names (fine-tuned like ``model_path``).
PRETRAINED_MODELS = ("smollm2-135m",)


class TofuSubsetSection(StrictModel):
    """Fine-tune on a seeded subset of TOFU's authors (whole authors, 20 QA pairs each) instead of all 200.

    Only the 40 authors whose questions TOFU ships with paraphrased and wrong answers
    (``retain_perturbed``: authors 0-19; ``forget10_perturbed``: 180-199) are drawn, so
    truth ratios and forget quality can be computed for every forget set. The forget set
    is the last ``round(F x pairs)`` QA pairs of the drawn authors in a seeded order of
    authors: whole authors where the share allows, and part of one author for the rest
    (1% of 200 pairs is 2 pairs of one author; TOFU's own forget01 is 2 whole authors).
    ``eval_size`` caps the retain, holdout, real-authors and world-facts evaluations
    (seeded samples); the forget set is evaluated whole.
    """

    n_authors: int = Field(default=10, ge=2, le=40)
    seed: int = 0
    eval_size: int | None = Field(default=40, ge=1)

class LMTuningSection(StrictModel):
    """The oracle-free selection that ``tune`` runs per approximate method (:mod:`obliviate.tasks.lm_tuning`).

    max_examples: QA per measured split (a seeded sample; disjoint from the evaluated samples
    where the split allows). checks: measurements per trial (early stopping and the choice of
    checkpoint). budget_s: seconds per method and seed for the whole selection (None: no cap).
    min_ks_p: the forget set's truth ratios count as "like held-out people's" when a KS test
    against the original's truth ratios on the tuning people gives at least this p-value.
    mia_tolerance: how far the loss-attack AUC (forget vs tuning people) may sit from 0.5.
    keep_tolerance / neighbour_tolerance: how far retain and general accuracy / neighbour
    accuracy may fall below the original's.
    """

    max_examples: int | None = Field(default=180, ge=8)
    checks: int = Field(default=8, ge=1)
    budget_s: float | None = Field(default=None, gt=0)
    min_ks_p: float = Field(default=0.3, gt=0, le=1)
    mia_tolerance: float = Field(default=0.05, ge=0, le=0.5)
    keep_tolerance: float = Field(default=0.07, ge=0, le=1)
    neighbour_tolerance: float = Field(default=0.1, ge=0, le=1)


class LMBenchConfig(RunConfig):
    """A language-model run: the model, its recipe, the corpus, evaluation and attacks, on top of the run fields.

    ``model``: the built-in GPT-2's shape, or the name of a pre-trained model
    (``smollm2-135m``, from the optional extra ``smollm2``) that is fine-tuned as
    ``model_path`` is. ``autocast``: ``bf16`` trains (fine-tuning, methods) under bfloat16
    autocast; evaluation always runs in float32 (bf16 log-probabilities are off by
    ~0.1 nat per token, too much for truth ratios). None: bf16 for ``smollm2-135m`` on a
    CPU, off otherwise. ``subset`` (tofu): fine-tune on a subset of the authors.
    ``model_path``: a local base model (``save_pretrained`` folder) that is fine-tuned
    on the training set to give the original and on the retain set to give the
    retain-only model, as in TOFU; ``original_path`` / ``retain_path`` skip those
    fine-tunings when you already have the models. Without ``model_path`` a small
    GPT-2 (``model``) is trained from scratch with a tokenizer trained on the task.
    ``forget`` (persons): ``random:F`` forgets a share F of the people (default: the
    corpus's ``forget_fraction``), ``subjects:ID,...`` those people, ``ids:FILE`` those
    question-answer pairs; (tofu): ``random:0.01|0.05|0.1`` picks the TOFU forget split.
    """

    task: Literal["persons", "tofu"] = "persons"
    split: str | None = None                  # tofu: forget01, forget05 or forget10 (default forget10)
    model_path: str | None = None
    original_path: str | None = None
    retain_path: str | None = None
    chat_template: bool = False
    dtype: str | None = None
    model: GPT2Config | Literal["smollm2-135m"] = Field(default_factory=GPT2Config)
    autocast: Literal["none", "bf16"] | None = None
    subset: TofuSubsetSection | None = None
    recipe: LMRecipeConfig = Field(default_factory=LMRecipeConfig)
    corpus: PersonsSection = Field(default_factory=PersonsSection)
    data_dir: str | None = None               # where the TOFU files are (default search path otherwise)
    method_defaults: bool = True              # the methods' task defaults: "lm" (built-in GPT-2), "lm-pretrained" (named model); none with model_path
    lora: LoRASection | None = None
    eval: EvalConfig = Field(default_factory=EvalConfig)
    attacks: AttacksConfig = Field(default_factory=AttacksConfig)
    tuning: LMTuningSection = Field(default_factory=LMTuningSection)
    out: str = "runs/bench-lm"
    parallel_training: bool = True           # train original and retain-only side by side (2 processes)
    method_workers: int | None = Field(default=None, ge=1)  # processes for the methods (None: 2 on a multi-core CPU)

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v == "gpt2":
                return GPT2Config()
            if v not in PRETRAINED_MODELS:
                raise ValueError(f"model must be 'gpt2' (built in, trained here) or one of "
                                 f"{', '.join(PRETRAINED_MODELS)}; got {v!r}")
        return v

    @property
    def pretrained_name(self) -> str | None:
        """The named pre-trained model (``--model smollm2-135m``), or None."""
        return self.model if isinstance(self.model, str) else None

    @property
    def pretrained(self) -> bool:
        """Whether a pre-trained model is fine-tuned (``model_path`` or a named model), not GPT-2 trained here."""
        return self.model_path is not None or self.pretrained_name is not None

    def uses_bf16(self) -> bool:
        if self.autocast is not None:
            return self.autocast == "bf16"
        return self.pretrained_name is not None and str(self.device).startswith("cpu")

    @field_validator("split")
    @classmethod
    def _split(cls, v: str | None) -> str | None:
        if v is not None and v not in TOFU_FORGET_SPLITS:
            raise ValueError(f"split must be one of {', '.join(TOFU_FORGET_SPLITS)} (TOFU forget sets)")
        return v
