"""Reporters: render result objects as JSON, Markdown and HTML with plots.

:mod:`~obliviate.report.layout` is the one layout every report shares (summary, tables,
plots, configuration and environment; jinja2 templates in ``templates/``);
:mod:`~obliviate.report.classifier` and :mod:`~obliviate.report.lm` build its sections from a
bench result, :mod:`~obliviate.report.audit` the strong-audit section, and
:mod:`~obliviate.report.plots` draws the figures.
"""
