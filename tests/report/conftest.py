"""Reports of every kind, written once per session from the synthetic results in ``synthetic.py``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import synthetic  # noqa: E402


@pytest.fixture(scope="session")
def report_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """report.html of a classifier bench, an LM bench, an audited classifier run and an API result."""
    from obliviate.report import audit, classifier, layout, lm

    root = tmp_path_factory.mktemp("reports")
    pages = {}
    bench = synthetic.classifier_result(seeds=1, load=3.8)
    pages["classifier"] = classifier.write_reports(bench, root / "bench")["html"]
    pages["lm"] = lm.write_reports(synthetic.lm_result(seeds=3), root / "lm")["html"]
    run = root / "audited"
    classifier.write_reports(synthetic.classifier_result(seeds=1, methods=["finetune", "graddiff", "kl"]), run)
    pages["audit"] = audit.write_audit_reports(run, synthetic.audit_dict())["html"]
    api = root / "api" / "report.html"
    api.parent.mkdir()
    api.write_text(layout.markdown_to_html(synthetic.api_markdown(), title="obliviate.forget: graddiff"))
    pages["api"] = api
    return pages
