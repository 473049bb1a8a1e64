"""Summation-form estimators: forgetting subtracts terms.

Cao & Yang (2015), "Towards Making Systems Forget with Machine Unlearning"
(IEEE S&P): if a learner depends on its training data only through sums
``sum_i g(x_i, y_i)``, removing a row is subtracting its term from the sums and
recomputing the model from them. The result equals a refit on the remaining
rows up to floating-point rounding, i.e. *exact* removal (epsilon = delta = 0).

Three scikit-learn compatible estimators:

- :class:`SummationGaussianNB` - like ``sklearn.naive_bayes.GaussianNB``;
  per-class count, mean and centred sum of squares, updated with the reverse of
  Chan et al.'s parallel-variance formula (numerically stable, unlike raw sums
  of squares); ``var_smoothing`` uses the same statistics of the whole data.
- :class:`SummationMultinomialNB` - like ``MultinomialNB``; per-class feature
  counts.
- :class:`SummationRidge` - like ``sklearn.linear_model.Ridge``; mean and
  centred scatter matrices of ``[X, y]``, and the inverse of the d x d system
  kept up to date with rank-k Woodbury updates, guarded by a stability check
  that falls back to a fresh factorisation when an update would lose accuracy.

Cost of ``forget`` for m removed rows: O(m d) for the naive Bayes models,
O(m d^2 + m^3) for ridge (one O(d^3) refactorisation for batches over d/4
rows); it never reads the other n - m rows, except in the stability check's
fallback (the removed rows carried nearly all of the data's spread in some
direction, so the statistics are recomputed from the stored remaining rows,
O(n d) or O(n d^2); see each class). Every ``forget`` appends a
:class:`DeletionRecord` to ``deletion_log_``: what was done, whether and why
it refactorised, and the measured stability values.

The code lives in ``_summation_base`` (validation, statistics, records),
``summation_nb`` and ``summation_ridge``; this module is the public entry
point and re-exports them.

Memory cost: to subtract a row, the estimator must still have it, so ``fit``
keeps a float64 copy of ``X`` (n x d, 8 n d bytes: 376 MB for 60,000 x 784)
and of ``y``. ``forget`` overwrites the removed rows of that copy with zeros
(in place, O(m d)) so the object no longer holds them. Copies made earlier
(pickles, swap, the caller's own arrays) are outside its reach.
"""

from obliviate.removal.exact._summation_base import (
    DeletionRecord,
    EstimatorNotFittedError,
    ExactRemovalGuarantee,
    InputTypeError,
    _typed_data_error,
    check_classifier_targets,
    check_fit_data,
    check_forget_indices,
    check_predict_X,
    is_real,
    moments,
    param_problem,
    raise_problems,
    remove_moments,
    require_fitted,
)
from obliviate.removal.exact.summation_nb import SummationGaussianNB, SummationMultinomialNB
from obliviate.removal.exact.summation_ridge import SummationRidge

__all__ = [
    "DeletionRecord",
    "EstimatorNotFittedError",
    "ExactRemovalGuarantee",
    "InputTypeError",
    "SummationGaussianNB",
    "SummationMultinomialNB",
    "SummationRidge",
    "_typed_data_error",
    "check_classifier_targets",
    "check_fit_data",
    "check_forget_indices",
    "check_predict_X",
    "is_real",
    "moments",
    "param_problem",
    "raise_problems",
    "remove_moments",
    "require_fitted",
]
