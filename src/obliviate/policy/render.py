"""A certificate as files: the signed JSON (what is verified) and an HTML page (what people read)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from obliviate.fileio import atomic_write_bytes

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Certificate {{ c.certificate_id }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
img { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; }
td, th { border: 1px solid #ccc; padding: .3rem .5rem; text-align: left; vertical-align: top; }
.outcome { font-size: 1.2rem; font-weight: bold; }
.not-honoured, .partly-honoured { color: #a40000; }
.honoured { color: #1d6b1d; }
code { word-break: break-all; }
</style></head><body>
<h1>Certificate {{ c.certificate_id }}</h1>
<p class="outcome {{ c.outcome | replace(' ', '-') }}">Outcome: {{ c.outcome }}</p>
<p>{{ c.statement }}</p>
<p>Kind of evidence: {{ c.kinds | join(', ') if c.kinds else 'none (nothing was carried out)' }}.</p>
<h2>Request</h2>
<table>
<tr><th>id</th><td>{{ c.request.request_id }}</td></tr>
<tr><th>who</th><td>{{ c.request.who }} {{ c.request.requester_name }}</td></tr>
<tr><th>why</th><td>{{ c.request.why }}</td></tr>
<tr><th>what</th><td>{{ c.request.what.kind }}: {{ c.request.what | tojson }}</td></tr>
<tr><th>deployment</th><td>{{ c.deployment.name }} ({{ c.deployment.model }}, users have {{ c.decision.access }} access)</td></tr>
<tr><th>received</th><td>{{ c.request.received }}</td></tr>
<tr><th>deadline</th><td>{{ c.deadline.text }}; answered on time: {{ c.answered_on_time }}</td></tr>
</table>
<h2>Decision</h2>
<p>Removal necessary: <b>{{ c.decision.removal_necessary }}</b>, sufficient: <b>{{ c.decision.removal_sufficient }}</b>.
Suppression necessary: <b>{{ c.decision.suppression_necessary }}</b>, sufficient: <b>{{ c.decision.suppression_sufficient }}</b>.</p>
<p>{{ c.decision.rationale }}</p>
<ul>{% for m, text in c.decision.mismatches.items() %}<li>{{ m }}: {{ text }}</li>{% endfor %}</ul>
<h2>What was done</h2>
<table><tr><th>step</th><th>kind</th><th>label</th><th>honoured</th><th>seconds</th></tr>
{% for s in c.steps %}<tr><td>{{ s.name }}</td><td>{{ s.kind }}</td><td>{{ s.label }}</td><td>{{ s.honoured }}</td><td>{{ '%.2f' % s.seconds }}</td></tr>
<tr><td colspan="5"><details><summary>measurements</summary><code>{{ s.measurements | tojson }}</code></details></td></tr>
{% endfor %}</table>
{% if figure %}<h2>Measured</h2>
<p>Each step's measurements in [0, 1] (audit accuracies and AUCs, where 0.5 is chance and what an exact
removal scores; guard coverage and over-refusal; the share of training redone).</p>
<img alt="measurements of each step" src="data:image/png;base64,{{ figure }}">{% endif %}
<h2>History</h2>
<table><tr><th>status</th><th>at</th><th>by</th><th>why</th></tr>
{% for e in c.events %}<tr><td>{{ e.status }}</td><td>{{ e.at }}</td><td>{{ e.by }}</td><td>{{ e.why }}</td></tr>{% endfor %}</table>
{% if c.problems %}<h2>Not achieved</h2><ul>{% for p in c.problems %}<li>{{ p }}</li>{% endfor %}</ul>{% endif %}
{% if c.notes %}<h2>Notes</h2><ul>{% for n in c.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
<h2>Residual risks</h2>
<ul>{% for r in c.residual_risks %}<li>{{ r }}</li>{% endfor %}</ul>
<h2>Lineage</h2>
<table>{% for k, v in c.lineage.items() %}<tr><th>{{ k }}</th><td><code>{{ v if v is string else (v | tojson) }}</code></td></tr>{% endfor %}</table>
<h2>Timings</h2>
<table>{% for k, v in c.timings.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<h2>Signature</h2>
<p>Issued {{ c.issued_at }}, signed with the Ed25519 key <code>{{ c.key_fingerprint }}</code>.
Check the JSON file with <code>obliviate certificate verify FILE --expect-key {{ c.key_fingerprint }}</code>;
this page is a rendering and is not itself signed.</p>
</body></html>
"""


def _unit_measurements(cert: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(step, measurement, value) for every numeric measurement in [0, 1] (bools and counts left out)."""
    out = []
    for step in cert.get("steps", []):
        for key, value in (step.get("measurements") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0:
                out.append((f"{step.get('name', '')} [{step.get('kind', '')}]", key, float(value)))
    return out


def measurements_png(cert: dict[str, Any]) -> str | None:
    """The steps' measurements as a bar chart (base64 PNG), with chance (0.5) marked; None when there are none."""
    rows = _unit_measurements(cert)
    if not rows:
        return None
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.2), dpi=110)
    labels = [f"{step}: {key}" for step, key, _ in rows]
    ax.barh(range(len(rows)), [v for _, _, v in rows], color="#4c78a8")
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.axvline(0.5, color="#888", linestyle="--", linewidth=1)
    ax.text(0.5, -0.6, "chance / exact", ha="center", va="bottom", fontsize=7, color="#555")
    for i, (_, _, v) in enumerate(rows):
        ax.text(min(v + 0.01, 0.93), i, f"{v:.3g}", va="center", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def render_html(cert: dict[str, Any]) -> str:
    """The certificate as an HTML page (autoescaped), with a plot of the steps' measurements."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_HTML).render(c=cert, figure=measurements_png(cert))


def write_certificate(cert: dict[str, Any], out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``certificate.json`` and ``certificate.html`` into the folder ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "certificate.json", folder / "certificate.html"
    atomic_write_bytes(json_path, (json.dumps(cert, indent=2, ensure_ascii=False) + "\n").encode())
    atomic_write_bytes(html_path, render_html(cert).encode())
    return json_path, html_path


__all__ = ["render_html", "write_certificate"]
