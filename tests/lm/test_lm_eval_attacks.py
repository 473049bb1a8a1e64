"""Model I/O for LM audits (signals, per-split metrics, membership AUCs) and the recovery attacks."""

from __future__ import annotations

import numpy as np
import pytest

from obliviate.data.qa import QADataset, QAExample


@pytest.fixture(scope="module")
def signals(tiny_lm):
    from obliviate.audit.lm_eval import split_signals
    from obliviate.tasks.lm_data import values_form

    fmt, corpus = tiny_lm["fmt"], tiny_lm["corpus"]
    forget, holdout = values_form(corpus.forget), values_form(corpus.holdout)
    return {name: {"forget": split_signals(tiny_lm[name], fmt, forget, verbatim=True),
                   "holdout": split_signals(tiny_lm[name], fmt, holdout)}
            for name in ("original", "retained")}


def test_values_form_cuts_wrong_values_out_of_the_template():
    from obliviate.tasks.lm_data import values_form

    ex = QAExample(id="p/occupation", subject="p", question="What is X's occupation?", answer="chemist",
                   paraphrased_answer="X works as a chemist.",
                   perturbed_answer=("X works as an architect.", "X works as a baker."))
    odd = QAExample(id="p/other", subject="p", question="Q?", answer="blue",
                    paraphrased_answer="It is blue.", perturbed_answer=("Something else entirely",))
    out = values_form(QADataset([ex, odd]))
    assert out[0].paraphrased_answer == "chemist" and out[0].perturbed_answer == ("architect", "baker")
    assert out[1] == odd  # the template does not fit: keep the sentences


def test_signals_and_split_metrics(signals, tiny_lm):
    from obliviate.audit.lm_eval import split_metrics, truth_ratios

    orig, ref = signals["original"]["forget"], signals["retained"]["forget"]
    assert len(orig.answer) == len(tiny_lm["forget"]) and all(len(p) == 3 for p in orig.perturbed)
    m_orig = split_metrics(orig, forget_like=True, n_boot=50)
    m_ref = split_metrics(ref, forget_like=True, n_boot=50)
    assert m_orig["rouge"]["mean"] > 0.9 and m_orig["prob"]["mean"] > 0.9
    assert m_orig["prob"]["low"] <= m_orig["prob"]["mean"] <= m_orig["prob"]["high"]
    assert m_ref["rouge"]["mean"] < 0.5
    # the original prefers the true values; the retain-only model cannot tell them apart as well
    assert np.nanmedian(truth_ratios(orig)) < np.nanmedian(truth_ratios(ref))
    assert m_orig["verbatim_rouge"]["mean"] > m_ref["verbatim_rouge"]["mean"]
    assert 0 <= m_ref["truth_ratio"]["mean"] <= 1


def test_forget_quality_and_membership(signals):
    from obliviate.audit.lm_eval import mia_aucs, truth_ratios
    from obliviate.audit.lm_metrics import forget_quality
    from obliviate.audit.lm_mia import privleak

    tr_orig = truth_ratios(signals["original"]["forget"])
    tr_ref = truth_ratios(signals["retained"]["forget"])
    assert forget_quality(tr_ref, tr_ref) == pytest.approx(1.0)
    assert forget_quality(tr_orig, tr_ref) < 0.05
    auc_orig = mia_aucs(signals["original"]["forget"], signals["original"]["holdout"])
    auc_ref = mia_aucs(signals["retained"]["forget"], signals["retained"]["holdout"])
    assert set(auc_orig) == {"loss", "zlib", "min_k", "min_k_pp"}
    assert auc_orig["loss"] > 0.9  # members are obvious to the original
    assert privleak(auc_orig["min_k"], auc_ref["min_k"]) > 0


def test_relearn_split_is_per_subject_and_seeded(tiny_lm):
    from obliviate.audit.lm_attacks import relearn_split

    forget = tiny_lm["corpus"].train.by_subjects(tiny_lm["corpus"].train.subjects()[:3])
    a, b = relearn_split(forget, 0.5, seed=0)
    assert set(a.ids) | set(b.ids) == set(forget.ids) and not set(a.ids) & set(b.ids)
    assert set(a.subjects()) == set(b.subjects()) == set(forget.subjects())
    assert relearn_split(forget, 0.5, seed=0)[0].ids == a.ids
    assert relearn_split(forget, 0.5, seed=1)[0].ids != a.ids


def test_relearning_and_in_context_attacks(tiny_lm):
    from obliviate.audit.lm_attacks import ICLConfig, RelearnConfig, icl_attack, relearn, relearn_attack, relearn_split

    fmt, forget = tiny_lm["fmt"], tiny_lm["forget"]
    a, b = relearn_split(forget, 0.5, seed=0)
    cfg = RelearnConfig(steps=4, lr=1e-3, batch_size=8)
    control = relearn(tiny_lm["retained"], fmt, a, b, cfg, seed=0)
    model = relearn(tiny_lm["original"], fmt, a, b, cfg, seed=0)
    assert model["rouge_before"] > 0.9 > control["rouge_before"]
    rec = relearn_attack(model, control)
    assert rec["relearn_rouge_excess"] == pytest.approx(rec["relearn_rouge_gain"] - rec["relearn_rouge_control_gain"])
    assert rec["relearn_recovery"] == pytest.approx(model["rouge_after"] - control["rouge_after"]) and rec["relearn_recovery"] > 0
    assert relearn_attack(control, control)["relearn_recovery"] == 0.0

    icl = icl_attack(tiny_lm["retained"], fmt, forget, ICLConfig(n_context=2, max_questions=10), seed=0)
    assert {"icl_rouge_none", "icl_rouge_facts", "icl_rouge_related", "icl_recovery"} <= set(icl)
    assert icl["icl_recovery"] == pytest.approx(icl["icl_rouge_facts"] - icl["icl_rouge_none"])
    again = icl_attack(tiny_lm["retained"], fmt, forget, ICLConfig(n_context=2, max_questions=10), seed=0)
    assert again == icl


def test_attack_configs_are_validated():
    from obliviate.audit.lm_attacks import ICLConfig, RelearnConfig
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        RelearnConfig(steps=0, fraction=1.5)
    assert len(info.value.problems) == 2
    with pytest.raises(ConfigError, match="n_context"):
        ICLConfig(n_context=0)
