"""The dashboard page and the certificate page (server-rendered, autoescaped, no scripts)."""

from __future__ import annotations

from typing import Any

import jinja2

_FLAG_CLASS = {"overdue": "bad", "answered late": "bad", "due soon": "warn", "on time": "ok", "answered": "ok"}

_DASH = """<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>obliviate: requests</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5rem;max-width:1200px}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.bad{color:#a00;font-weight:600}.warn{color:#a60;font-weight:600}.ok{color:#070}
.kind{font-family:monospace}svg{display:block}</style></head><body>
<h1>Forget requests</h1>
<p>Seen by {{ viewer.name }} ({{ viewer.role }}). {{ rows|length }} request(s); {{ counts.overdue }} overdue,
{{ counts.soon }} due soon. Kinds: <b>exact</b> removal (retraining equivalent), <b>approximate</b> removal
(measured by an audit), <b>suppression</b> (outputs filtered, weights unchanged).</p>
<table id="requests"><thead><tr><th>request</th><th>owner</th><th>deployment</th><th>state</th><th>due</th>
<th>deadline</th><th>kinds</th><th>certificate</th></tr></thead><tbody>
{% for r in rows %}<tr data-request="{{ r.request_id }}" data-state="{{ r.state }}" data-flag="{{ r.deadline.flag }}">
<td>{{ r.request_id }}</td><td>{{ r.owner }}</td><td>{{ r.deployment }}</td><td class="state">{{ r.state }}</td>
<td>{{ r.deadline.due }}</td><td class="flag {{ flag_class[r.deadline.flag] }}">{{ r.deadline.flag }}
({{ r.deadline.days_left }} d)</td><td class="kind">{{ r.kinds|join(', ') or '-' }}</td>
<td>{% if r.has_certificate %}<a class="cert" href="requests/{{ r.request_id }}/certificate.html">certificate</a>
{% else %}-{% endif %}</td></tr>
{% endfor %}</tbody></table></body></html>"""

_CERT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>certificate {{ c.certificate_id }}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5rem;max-width:1000px}svg{display:block;margin:1rem 0}</style>
</head><body><h1>Certificate {{ c.certificate_id }}</h1>
<p>Request {{ c.request.request_id }}: <b>{{ c.outcome }}</b>. Kinds: <span id="kinds">{{ c.kinds|join(', ') }}</span>.</p>
<p>{{ c.statement }}</p>
<figure><svg id="plot" role="img" aria-label="seconds per step" width="{{ width }}" height="{{ height }}"
viewBox="0 0 {{ width }} {{ height }}" xmlns="http://www.w3.org/2000/svg">
{% for b in bars %}<rect x="160" y="{{ b.y }}" width="{{ b.w }}" height="18" fill="{{ b.colour }}"/>
<text x="4" y="{{ b.y + 13 }}" font-size="12">{{ b.label }}</text>
<text x="{{ 166 + b.w }}" y="{{ b.y + 13 }}" font-size="12">{{ '%.2f'|format(b.s) }} s</text>{% endfor %}
</svg><figcaption>Seconds per step, coloured by kind (exact blue, approximate orange, suppression green).
</figcaption></figure>
<h2>Steps</h2><ol>{% for s in c.steps %}<li><b>{{ s.kind }}</b>: {{ s.label }}</li>{% endfor %}</ol>
<h2>Residual risks</h2><ul>{% for r in c.residual_risks %}<li>{{ r }}</li>{% endfor %}</ul>
<p>Key {{ c.key_fingerprint }}. Check the JSON with <code>obliviate certificate verify FILE --expect-key
{{ c.key_fingerprint }}</code>; this page is a rendering and is not itself signed.</p></body></html>"""

_COLOURS = {"exact": "#1f77b4", "approximate": "#ff7f0e", "suppression": "#2ca02c"}
_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)


def dashboard_page(rows: list[Any], *, viewer: Any) -> str:
    counts = {"overdue": sum(r.deadline.flag == "overdue" for r in rows),
              "soon": sum(r.deadline.flag == "due soon" for r in rows)}
    return _env.from_string(_DASH).render(rows=rows, viewer=viewer, counts=counts, flag_class=_FLAG_CLASS)


def certificate_page(cert: dict[str, Any]) -> str:
    steps = cert.get("steps", [])
    secs = [float(s.get("seconds", 0.0)) for s in steps]
    top = max(secs, default=0.0) or 1.0
    bars = [{"y": 10 + 26 * i, "w": round(400 * v / top, 1), "s": v, "label": f"{i + 1}. {s['kind']}"[:24],
             "colour": _COLOURS.get(s["kind"], "#777")} for i, (s, v) in enumerate(zip(steps, secs))]
    return _env.from_string(_CERT).render(c=cert, bars=bars, width=640, height=20 + 26 * max(1, len(bars)))


__all__ = ["certificate_page", "dashboard_page"]
