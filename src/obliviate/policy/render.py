"""A certificate as files: the signed JSON (what is verified) and an HTML page (what people read)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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


def render_html(cert: dict[str, Any]) -> str:
    """The certificate as an HTML page (autoescaped)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(_HTML).render(c=cert)


def write_certificate(cert: dict[str, Any], out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``certificate.json`` and ``certificate.html`` into the folder ``out``."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "certificate.json", folder / "certificate.html"
    json_path.write_text(json.dumps(cert, indent=2, ensure_ascii=False) + "\n")
    html_path.write_text(render_html(cert))
    return json_path, html_path


__all__ = ["render_html", "write_certificate"]
