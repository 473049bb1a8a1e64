"""Small result objects shaped like real runs (``obliviate bench`` on digits, ``--task persons``,
``obliviate audit``), built in microseconds, for the reporter tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

CLASSIFIER_METHODS = ["amun", "aru", "boundary_shrink", "finetune", "graddiff", "gradient_ascent", "kl", "l1_sparse",
                      "layer_reset", "noise", "prune_finetune", "random_label", "rmu", "salun", "scrub", "ssd"]
LM_METHODS = ["finetune", "graddiff", "gradient_ascent", "idk", "kl", "lm_layer_reset", "npo", "rmu", "simnpo", "whp"]
RECIPE = {"batch_size": 64, "epochs": 30, "lr": 0.001, "momentum": 0.9, "optimizer": "adam", "schedule": "cosine",
          "weight_decay": 0.0}


def machine(*, load: float = 0.4, loaded: bool | None = None) -> dict[str, Any]:
    m = {"cores": 2, "cpu": "AMD EPYC", "platform": "Linux-6.18-x86_64-with-glibc2.36", "python": "3.11.7",
         "torch": "2.13.0+cpu", "torch_threads": 1, "load_average": [load, load * 0.9, load * 0.8]}
    if loaded is not None:
        m["loaded"] = loaded
    return m


def classifier_result(*, seeds: int = 1, methods: list[str] | None = None, load: float = 0.4,
                      loaded: bool | None = None, cached_retrain: bool = False, cpu: bool = False) -> SimpleNamespace:
    methods = CLASSIFIER_METHODS if methods is None else methods
    rng = np.random.default_rng(0)
    records = []
    seed_meta = {}
    for seed in range(seeds):
        retrain_s = 2.1 + 0.1 * seed
        seed_meta[str(seed)] = {"n_forget": 144, "n_retain": 1294, "original_cached": seed > 0,
                                "original_train_acc": 0.997, "original_train_s": 3.5, "retrain_s": retrain_s}
        base = {"ua": 0.0, "ra": 0.997, "ta": 0.983}
        for i, m in enumerate(["original", "retrain", *methods]):
            if m == "original":
                ua, ra, ta, tow, wall = 0.0, 0.997, 0.983, 0.992, 0.0
            elif m == "retrain":
                ua, ra, ta, tow, wall = 0.007, 0.996, 0.983, 1.0, retrain_s
            else:  # a method's numbers stay close from seed to seed, as in real runs
                mrng = np.random.default_rng(i)
                jitter = 1 + 0.05 * rng.standard_normal()
                ua = float(abs(mrng.normal(0.005, 0.02))) * jitter
                ra = float(0.997 - abs(mrng.normal(0, 0.01 if m != "prune_finetune" else 0.07)) * jitter)
                ta = float(ra - 0.014)
                tow = float((1 - abs(ua - 0.007)) * (1 - abs(ra - 0.996)) * (1 - abs(ta - 0.983)))
                wall = float(retrain_s * 10 ** mrng.uniform(-2.5, -0.3)) * jitter
            rec = {"method": m, "kind": "none" if m == "original" else "exact" if m == "retrain" else "approximate",
                   "seed": seed, "forget_acc": 1 - ua, "retain_acc": ra, "test_acc": ta, "ua": ua, "ra": ra,
                   "ta": ta, "tow": tow, "tow_gap_closed": (tow - 0.992) / (1 - 0.992),
                   "js_to_retrain": 0.0 if m == "retrain" else float(abs(rng.normal(0.003, 0.002))),
                   "mia_auc": float(0.5 + rng.normal(0, 0.01)), "mia_efficacy": float(abs(rng.normal(0.01, 0.01))),
                   "mia_loss_efficacy": 0.03, "wall_s": wall, "wall_ratio": wall / retrain_s,
                   "steps": 0 if m == "original" else 20 + i, "stopped_by": "none" if m == "original" else "completed",
                   "config": {} if m in ("original", "retrain") else {"lr": 1e-3, "epochs": 1}}
            if m == "retrain":
                rec["cached"] = cached_retrain
            if cpu:
                rec["cpu_s"] = wall * 0.9
            records.append(rec)
    meta = {"task": "classification", "dataset": "digits", "n_train": 1438, "n_test": 359, "n_classes": 10,
            "recipe": RECIPE, "methods": ["retrain", *methods], "machine": machine(load=load, loaded=loaded),
            "started": "2026-12-03 14:10:22", "finished": "2026-12-03 14:10:27", "seeds": seed_meta,
            "versions": {"torch": "2.13.0+cpu", "numpy": "2.1.0", "scikit-learn": "1.5.2", "obliviate": "0.1.0"}}
    if cached_retrain:
        meta["retrain_cached_from"] = "runs/earlier (2026-12-02 09:12)"
    config = {"budget": {"max_seconds": None, "max_steps": None}, "dataset": "digits", "forget": "random:0.1",
              "method_config": {}, "methods": methods, "model": "mlp", "model_options": {}, "out": "/tmp/x",
              "recipe": {k: None for k in RECIPE}, "seeds": list(range(seeds)), "task": "classification",
              "threads": 1, "train_subset": None, "use_cache": True}
    return SimpleNamespace(config=config, records=records, meta=meta)


# forget quality of the real persons run: the original and most methods far below any axis
LM_FQ = {"original": 9.7e-150, "retrain": 1.0, "finetune": 1.7e-138, "graddiff": 0.244, "gradient_ascent": 3.3e-69,
         "idk": 1.3e-87, "kl": 0.045, "lm_layer_reset": 1.4e-87, "npo": 5.5e-11, "rmu": 4.3e-111,
         "simnpo": 1.5e-57, "whp": 3.6e-80}


def lm_result(*, seeds: int = 1, task: str = "persons", load: float = 3.8,
              cached_retain: bool = False) -> SimpleNamespace:
    rng = np.random.default_rng(1)
    records = []
    seed_meta = {}
    for seed in range(seeds):
        seed_meta[str(seed)] = {
            "n_train": 3668, "n_forget": 360, "n_retain": 3308, "original_train_s": 387.0, "retain_train_s": 368.0,
            "original_cached": False, "retain_cached": cached_retain,
            "recipe": {"epochs": 40, "batch_size": 64, "lr": 0.003, "weight_decay": 0.0, "warmup_fraction": 0.03,
                       "schedule": "cosine", "max_grad_norm": 1.0},
            "model": {"kind": "gpt2", "n_layer": 2, "n_embd": 128, "n_head": 4, "vocab_size": 4096,
                      "parameters": 937472},
            "original_train_exact": 1.0, "retain_train_exact": 1.0, "train_pair_s": 400.0, "eval_s": 20.0,
            "relearn_split": {"relearn": 180, "held_back": 180}, "method_workers": 2, "seed_wall_s": 727.0}
        for m in ["original", "retrain", *LM_METHODS]:
            fq = LM_FQ[m] * (1 if seed == 0 else 0.8)
            mu = {"original": 0.987, "retrain": 0.986}.get(m, 0.9 + 0.008 * LM_METHODS.index(m) if m in LM_METHODS
                                                             else 0.9) + 0.004 * seed
            rec = {"method": m, "seed": seed, "kind": "baseline" if m == "original" else "exact" if m == "retrain"
                   else "approximate", "forget_quality": fq, "log10_forget_quality": float(np.log10(max(fq, 1e-300))),
                   "model_utility": mu, "model_utility_ratio": mu / 0.986,
                   "wall_s": 0.0 if m == "original" else 368.0 if m == "retrain" else float(10 + 60 * rng.random()),
                   "steps": 0 if m == "original" else 50, "stopped_by": "n/a" if m == "original" else "completed"}
            rec["wall_ratio"] = rec["wall_s"] / 368.0
            for split in ("forget", "retain", "holdout", "neighbours", "general"):
                rec[f"{split}_rouge"] = 1.0 if (m == "original" or split != "forget") else float(rng.random())
                rec[f"{split}_prob"] = float(rng.random())
                rec[f"{split}_truth_ratio"] = float(0.3 * rng.random())
            for a in ("loss", "zlib", "min_k", "min_k_pp"):
                rec[f"mia_auc_{a}"] = float(0.5 + 0.4 * rng.random())
            rec.update({"privleak": float(rng.normal(0, 0.5)), "verbatim_rouge": float(rng.random()),
                        "relearn_recovery": float(rng.random()), "relearn_rouge_gain": float(rng.random()),
                        "icl_recovery": float(-rng.random()), "icl_related_recovery": float(-0.5 * rng.random())})
            records.append(rec)
    meta = {"task": task, "methods": ["original", "retrain", *LM_METHODS], "machine": machine(load=load),
            "started": "2026-12-01 10:44:00", "finished": "2026-12-01 11:21:00", "seeds": seed_meta,
            "load_average": [load, 3.1, 2.9]}
    config = {"task": task, "split": None, "seeds": list(range(seeds)), "methods": LM_METHODS,
              "model": {"n_layer": 2, "n_embd": 128}, "recipe": {"epochs": None, "lr": None}, "lora": None}
    return SimpleNamespace(config=config, records=records, meta=meta)


def _roc(strength: float, n: int = 60) -> tuple[list[float], list[float]]:
    fpr = np.concatenate([[0.0], np.logspace(-3, 0, n)])
    tpr = np.clip(fpr ** (1 / (1 + strength)), 0, 1)
    return fpr.tolist(), tpr.tolist()


def audit_dict(methods: tuple[str, ...] = ("original", "retrain", "finetune", "graddiff", "kl")) -> dict[str, Any]:
    out: dict[str, Any] = {"format": 1, "run": "/tmp/run", "seed": 0, "replicas": 16,
                           "attacks": ["population", "lira", "ulira", "challenge", "relearn"],
                           "settings": {"relearn_steps": 20, "relearn_models": 16},
                           "threshold_text": ["the weak attack *passes* a method when its AUC is within 0.05 "
                                              "of retrain's",
                                              "LiRA *catches* it when its online AUC is >= 0.55"],
                           "data": {"dataset": "digits", "n_forget": 144, "n_retain": 1294, "n_test": 359},
                           "timing": {"total_s": 132.4}, "notes": [], "methods": {}}
    for i, m in enumerate(methods):
        strength = 0.0 if m == "retrain" else 1.5 - 0.2 * i
        fpr, tpr = _roc(strength)
        lira = {"auc": 0.5 + 0.1 * strength, "tpr_at_1pct": 0.01 + 0.05 * strength,
                "tpr_at_0_1pct": 0.001 + 0.02 * strength, "fpr": fpr, "tpr": tpr, "n_members": 2304,
                "n_nonmembers": 2304}
        flagged = m not in ("retrain",)
        out["methods"][m] = {
            "kind": "none" if m == "original" else "exact" if m == "retrain" else "approximate",
            "population": {"mia_auc": 0.5 + 0.005 * i, "replicas_mia_auc": 0.51},
            "lira": {"online": lira, "offline": dict(lira, auc=lira["auc"] - 0.02)},
            "ulira": {"mean_accuracy": 0.5 + 0.08 * strength},
            "challenge": {"F": 0.136 - 0.02 * strength, "final_score": 0.13 - 0.02 * strength},
            "relearn": {"after_gap": 0.01, "after_gap_ci": [0.01, 0.008], "excess_recovery_ci": [0.005, 0.004]},
            "verdict": {"weak_passes": True, "caught_by": ["lira", "ulira"] if flagged else [], "flagged": flagged},
        }
    out["flags"] = [f"{m}: the weak attack passes it, but it is caught by LiRA." for m in methods if m != "retrain"]
    return out


def api_markdown() -> str:
    """``ForgetResult.to_markdown()`` of a small audited ``obliviate.forget`` call."""
    import torch.nn as nn

    from obliviate.api import ForgetResult
    from obliviate.removal.base import RemovalRecord

    metrics = {name: {"forget_acc": fa, "retain_acc": 0.99, "test_acc": 0.97, "tow": tow, "tow_gap_closed": gap,
                      "js_to_retrain": js, "mia_auc": 0.5, "mia_efficacy": 0.01}
               for name, fa, tow, gap, js in (("original", 1.0, 0.95, 0.0, 0.02), ("retrain", 0.93, 1.0, 1.0, 0.0),
                                              ("graddiff", 0.95, 0.98, 0.6, 0.01))}
    res = ForgetResult(model=nn.Linear(2, 2), record=RemovalRecord("graddiff", "approximate", 0.4, 30, "completed", {}),
                       n_forget=144, n_retain=1294, metrics=metrics, retrain_s=2.1)
    return res.to_markdown()
