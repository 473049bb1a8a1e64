"""Memorisation scores per training example, and the hard forget sets they define.

Some examples are much harder to unlearn than others: the ones a model can only get
right by memorising them (atypical, ambiguous or mislabelled). This module scores
every training example with Feldman's memorisation estimator (Feldman 2020, "Does
Learning Require Memorization?"; Feldman & Zhang 2020, "What Neural Networks
Memorize and Why"):

    mem(i) = P[h(x_i) = y_i | i in the training set] - P[h(x_i) = y_i | i left out]

estimated with ``K`` small models trained on random halves of the data. Halves come
in complementary pairs (a random half and its complement), so every example is in
exactly ``K/2`` training sets and out of the other ``K/2``. The ``K`` models are
trained at once with :func:`obliviate.engine.replicas.train_replicas`. The same
difference with the predicted probability of the true label instead of 0/1
correctness is kept as a finer second key (it breaks the many ties of a 0/1 estimate
from a few models).

Defaults (a cheap proxy, not the 4000-model estimate of Feldman & Zhang): ``K = 16``
one-hidden-layer MLPs (128 units) trained for 20 epochs with Adam (lr 1e-3, batches
of 64): enough to fit small image data sets, and so to memorise their outliers.
Scores are cached in the model cache training uses (:class:`obliviate.training.cache.ModelCache`:
``<cache>/<key>/`` with safetensors and a manifest), keyed by the data's fingerprint, the model,
the training recipe and the seed; the run's ``--cache-dir`` / ``--no-cache`` reach it through
:func:`using_cache`, and a corrupt entry is recomputed (with a warning).

Forget specs registered here (:mod:`obliviate.data.forget` imports this module on first use of one):

* ``memorized:FRACTION`` - the top ``FRACTION`` of the training set by score.
* ``memorized-stratum:low|mid|high[:FRACTION]`` - examples drawn uniformly at random
  (seeded) from one tercile of the score ranking; ``FRACTION`` of the whole training
  set (default 0.1, so strata are compared at equal forget-set sizes), or ``all`` for
  the whole tercile.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from obliviate.data.dataset import ArrayDataset
from obliviate.data.forget import FORGET_SPECS
from obliviate.errors import ConfigError, ForgetSetError, ShapeError

log = logging.getLogger(__name__)

DEFAULT_STRATUM_FRACTION = 0.1
STRATA = ("low", "mid", "high")


@dataclass(frozen=True)
class MemorizationConfig:
    """How the memorisation proxy is estimated (see the module docstring for the defaults' rationale)."""

    n_models: int = 16                   # K: models on random halves (an even number: complementary pairs)
    hidden: tuple[int, ...] = (128,)     # hidden layer widths of the MLP
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        problems = []
        if not (isinstance(self.n_models, int) and self.n_models >= 2 and self.n_models % 2 == 0):
            problems.append(f"The 'n_models' parameter of MemorizationConfig must be an even int >= 2; "
                            f"got {self.n_models!r} instead.")
        if not all(isinstance(h, int) and h >= 1 for h in self.hidden):
            problems.append(f"The 'hidden' parameter of MemorizationConfig must be positive ints; got {self.hidden!r}.")
        if problems:
            raise ConfigError("Invalid memorisation configuration:", problems)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MemorizationScores:
    """Per-example scores, aligned with the rows of the training set they were computed on."""

    score: np.ndarray        # Feldman's estimate with 0/1 correctness, in [-1, 1]
    prob_score: np.ndarray   # the same with p(y_i | x_i), a finer tie-breaker
    n_in: np.ndarray         # models that trained on each example
    n_out: np.ndarray        # models that did not
    key: str
    config: dict[str, Any]

    def order(self, seed: int = 0) -> np.ndarray:
        """Row positions from least to most memorised (ties: probability score, then a seeded shuffle)."""
        jitter = np.random.default_rng([seed, 0x3E4]).permutation(len(self.score))
        return np.lexsort((jitter, self.prob_score, self.score))


# --------------------------------------------------------------------------- pure math
def feldman_estimate(values: np.ndarray, member: np.ndarray) -> np.ndarray:
    """``mean(values[in]) - mean(values[out])`` per example.

    ``values`` (K, n): correctness (0/1) or probability of the true label of model k on
    example i; ``member`` (K, n) bool: whether model k trained on example i. Every
    example must be in at least one and out of at least one model.
    """
    values = np.asarray(values, dtype=np.float64)
    member = np.asarray(member, dtype=bool)
    if values.shape != member.shape or values.ndim != 2:
        raise ShapeError(f"values and member must both be (K, n); got {values.shape} and {member.shape}.")
    n_in, n_out = member.sum(axis=0), (~member).sum(axis=0)
    if (n_in == 0).any() or (n_out == 0).any():
        raise ShapeError("every example must be in at least one model's training set and out of at least one.")
    return (values * member).sum(axis=0) / n_in - (values * ~member).sum(axis=0) / n_out


def complementary_halves(n: int, n_models: int, seed: int) -> np.ndarray:
    """(K, n) membership: K/2 random halves and their complements."""
    rng = np.random.default_rng([seed, 0x3E1])
    member = np.zeros((n_models, n), dtype=bool)
    for k in range(n_models // 2):
        member[2 * k, rng.permutation(n)[: n // 2]] = True
        member[2 * k + 1] = ~member[2 * k]
    return member


# --------------------------------------------------------------------------- model I/O
_CACHE: ContextVar[Any] = ContextVar("obliviate_memorization_cache", default=None)


@contextmanager
def using_cache(cache: Any) -> Iterator[None]:
    """Inside this block, memorisation scores (and so the ``memorized:*`` specs) use ``cache``.

    ``cache`` is the :class:`obliviate.training.cache.ModelCache` of the run (its ``--cache-dir``
    and ``--no-cache``); forget specs only get ``(arg, train, seed)``, so the run sets it here.
    """
    token = _CACHE.set(cache)
    try:
        yield
    finally:
        _CACHE.reset(token)


def _scores_holder(n: int) -> Any:
    """The scores as an ``nn.Module`` of buffers, so the model cache stores them (safetensors + manifest)."""
    import torch
    from torch import nn

    holder = nn.Module()
    for name in ("score", "prob_score"):
        holder.register_buffer(name, torch.zeros(n, dtype=torch.float64))
    for name in ("n_in", "n_out"):
        holder.register_buffer(name, torch.zeros(n, dtype=torch.int64))
    return holder


def memorization_scores(train: ArrayDataset, *, seed: int = 0, config: MemorizationConfig | None = None,
                        use_cache: bool = True, device: str = "cpu", cache: Any = None) -> MemorizationScores:
    """Score every example of ``train``, cached (see the module docstring).

    ``cache`` is a :class:`obliviate.training.cache.ModelCache`; None: the one set by
    :func:`using_cache`, else the default model cache. ``use_cache=False`` neither reads nor writes.
    A corrupt cache entry is a miss, with a warning.
    """
    import torch

    from obliviate.engine.replicas import ReplicaRecipe, train_replicas
    from obliviate.models.zoo import MLP
    from obliviate.training.cache import ModelCache, cache_key

    config = config or MemorizationConfig()
    if len(train) < 4:
        raise ForgetSetError(f"memorisation scores need at least 4 training examples; {train.name} has {len(train)}.")
    key = cache_key(kind="memorization-feldman", data=train.fingerprint, model={"name": "mlp", "hidden": config.hidden},
                    input_shape=list(train.input_shape), n_classes=train.n_classes, config=config.to_dict(), seed=seed)
    cache = cache if cache is not None else _CACHE.get()
    if cache is None:
        cache = ModelCache()
    use_cache = use_cache and cache.enabled
    if use_cache:
        holder = _scores_holder(len(train))
        if cache.load(key, holder) is not None:
            log.info("memorisation scores for %s: reusing %s", train.name, cache.path(key))
            b = {k: v.numpy() for k, v in holder.named_buffers()}
            return MemorizationScores(b["score"], b["prob_score"], b["n_in"], b["n_out"], key, config.to_dict())
    member = complementary_halves(len(train), config.n_models, seed)
    seeds = [int(s) for s in np.random.SeedSequence([seed, 0x3E2]).generate_state(config.n_models)]
    input_shape, n_classes, hidden = train.input_shape, train.n_classes, config.hidden

    def factory() -> torch.nn.Module:
        return MLP(input_shape, n_classes, hidden=hidden)

    recipe = ReplicaRecipe(epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
                           optimizer=config.optimizer)
    log.info("memorisation scores for %s: training %d models on random halves", train.name, config.n_models)
    stacked = train_replicas(factory, train.x, train.y, member, seeds, recipe=recipe, device=device)
    logits = stacked.predict_logits(train.x)                        # (K, n, C)
    correct = logits.argmax(axis=-1) == train.y[None, :]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    p_true = np.exp(np.take_along_axis(log_p, train.y[None, :, None], axis=-1)[..., 0])
    scores = MemorizationScores(score=feldman_estimate(correct, member), prob_score=feldman_estimate(p_true, member),
                                n_in=member.sum(axis=0), n_out=(~member).sum(axis=0), key=key,
                                config=config.to_dict())
    if use_cache:
        holder = _scores_holder(len(train))
        for name in ("score", "prob_score", "n_in", "n_out"):
            getattr(holder, name).copy_(torch.from_numpy(np.asarray(getattr(scores, name))))
        cache.store(key, holder, {"key": key, "kind": "memorization-feldman", "dataset": train.name,
                                  "data_fingerprint": train.fingerprint, "config": config.to_dict(), "seed": seed})
    return scores


# --------------------------------------------------------------------------- forget specs


def _fraction(spec: str, text: str, *, upper: float = 1.0) -> float:
    try:
        frac = float(text)
    except ValueError:
        frac = math.nan
    if not 0.0 < frac < upper:
        raise ForgetSetError(f"{spec} is not valid: FRACTION must be a number in (0, {upper:.3g}), e.g. 0.1.")
    return frac


def strata_of(train: ArrayDataset, *, seed: int = 0) -> np.ndarray:
    """The memorisation tercile of every row of ``train``: 0 = low, 1 = mid, 2 = high (as the stratum specs cut it)."""
    n = len(train)
    labels = np.empty(n, dtype=np.int64)
    order = memorization_scores(train, seed=seed).order(seed)
    bounds = [0, n // 3, (2 * n) // 3, n]
    for k in range(3):
        labels[order[bounds[k]:bounds[k + 1]]] = k
    return labels


def _memorized(arg: str, train: ArrayDataset, seed: int) -> np.ndarray:
    spec = f"memorized:{arg}"
    frac = _fraction(spec, arg)
    n = int(round(frac * len(train)))
    if n == 0:
        raise ForgetSetError(f"{spec} selects no example of {len(train)}; use a larger fraction.")
    return np.sort(memorization_scores(train, seed=seed).order(seed)[-n:])


def _memorized_stratum(arg: str, train: ArrayDataset, seed: int) -> np.ndarray:
    spec = f"memorized-stratum:{arg}"
    stratum, _, frac_text = arg.partition(":")
    if stratum not in STRATA:
        raise ForgetSetError(f"{spec} is not valid: the stratum must be one of {', '.join(STRATA)} "
                             "(terciles of the memorisation score), e.g. memorized-stratum:high or "
                             "memorized-stratum:high:0.05.")
    n = len(train)
    bounds = [0, n // 3, (2 * n) // 3, n]
    lo, hi = bounds[STRATA.index(stratum)], bounds[STRATA.index(stratum) + 1]
    if frac_text == "all":
        size = hi - lo
    else:
        frac = _fraction(spec, frac_text, upper=(hi - lo) / n + 1e-12) if frac_text else DEFAULT_STRATUM_FRACTION
        size = int(round(frac * n))
        if size > hi - lo:
            raise ForgetSetError(f"{spec}: the {stratum} tercile has only {hi - lo} examples; "
                                 f"use a smaller fraction or ':all'.")
    if size == 0:
        raise ForgetSetError(f"{spec} selects no example of {n}; use a larger fraction.")
    tercile = memorization_scores(train, seed=seed).order(seed)[lo:hi]
    rng = np.random.default_rng([seed, 0x3E5])
    return np.sort(rng.choice(tercile, size=size, replace=False))


FORGET_SPECS.register("memorized", _memorized)
FORGET_SPECS.register("memorized-stratum", _memorized_stratum)
