"""Verdicts of an audit: which attacks pass or catch each method, and the sentences that say so.

Pure functions over the per-method result dicts of ``audit.json``; every decision comes from
the attack's own ``passes`` / ``verdict`` (two-sided, see :mod:`obliviate.audit.attacks.base`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from obliviate.audit.attacks.base import Attack, Thresholds

__all__ = ["BASELINE", "REFERENCE", "flag_sentences", "method_verdict", "caveat_notes"]

BASELINE, REFERENCE = "original", "retrain"


def method_verdict(attacks: Mapping[str, Attack], res: dict[str, Any], ref: dict[str, Any],
                   th: Thresholds) -> dict[str, Any]:
    """``weak_passes`` (None when no weak attack could say), what caught the method, and caveats."""
    weak_passes: bool | None = None
    caught: dict[str, str] = {}
    caveats: dict[str, str] = {}
    for name, attack in attacks.items():
        if name not in res:
            continue
        reference = ref.get(name)
        if attack.strength == "weak":
            passed = attack.passes(res[name], reference, th)
            if passed is not None:
                weak_passes = passed if weak_passes is None else (weak_passes and passed)
        else:
            text = attack.verdict(res[name], reference, th)
            if text:
                caught[name] = text
        caveat = attack.caveat(res[name])
        if caveat:
            caveats[name] = caveat
    return {"weak_passes": weak_passes, "caught_by": list(caught), "caught_text": list(caught.values()),
            "flagged": bool(weak_passes and caught), "caveats": caveats}


def flag_sentences(results: dict[str, dict[str, Any]], methods: Sequence[str], strong: Sequence[str]) -> list[str]:
    """One sentence per method that contrasts the weak and the strong attacks."""
    out = []
    for m in methods:
        v = results[m]["verdict"]
        auc_m = results[m]["population"].get("mia_auc")
        weak_txt = f"loss-attack AUC {auc_m:.3f}" if auc_m is not None else "no weak result"
        what = "the retrain oracle" if m == REFERENCE else "doing nothing (the original)" if m == BASELINE else m
        if v["flagged"]:
            out.append(f"{m}: the weak attack passes it ({weak_txt}), but it is caught by "
                       + _join(v["caught_text"]) + ".")
        elif m == REFERENCE and v["caught_by"]:
            out.append(f"{m}: {what} is caught by {_join(v['caught_text'])}; the thresholds are too tight "
                       "for this many replicas, so read the other rows against retrain's numbers.")
        elif v["caught_by"] and v["weak_passes"] is False:
            out.append(f"{m}: caught by the weak attack ({weak_txt}) and by the strong ones: "
                       f"{_join(v['caught_text'])}.")
        elif v["caught_by"]:
            out.append(f"{m}: caught by {_join(v['caught_text'])}.")
        elif strong and v["weak_passes"] is False:
            out.append(f"{m}: the weak attack catches it ({weak_txt}) but no strong attack does.")
        elif strong:
            out.append(f"{m}: no attack catches it" + (" (as expected of the oracle)." if m == REFERENCE else "."))
    return out


def caveat_notes(results: dict[str, dict[str, Any]], methods: Sequence[str]) -> list[str]:
    """Notes for the numbers that cannot be trusted (e.g. an unstable SVC attack), one per method."""
    notes = []
    for m in methods:
        caveats = results[m]["verdict"].get("caveats") or {}
        if caveats:
            notes.append(f"{m}: " + "; ".join(caveats.values()) + ".")
    return notes


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
