"""Regenerate or check the README's examples from the commands they show.

Each example in README.md sits between ``<!-- example: NAME -->`` and ``<!-- /example -->``
and is produced by the command registered under NAME below, so the README cannot drift
from what the code prints.

    python tools/readme_examples.py --write          # rerun every example, rewrite README.md
    python tools/readme_examples.py --check --cheap  # what tests/test_readme.py runs (seconds)

Expensive examples (a benchmark table) are rewritten by ``--write`` only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(<!-- example: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /example -->)", re.S)


def obliviate(*args: str, expect: int = 0, cwd: Path | None = None) -> str:
    """Run the command as a user would (a fresh process) and return what it printed."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "obliviate.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=cwd or ROOT, timeout=1800)
    if proc.returncode != expect:
        raise SystemExit(f"obliviate {' '.join(args)} exited {proc.returncode} (expected {expect}):\n"
                         f"{proc.stdout}\n{proc.stderr}")
    return (proc.stdout + proc.stderr).rstrip("\n")


def console(command: str, output: str) -> str:
    return f"```console\n$ {command}\n{output}\n```\n"


def _methods() -> str:
    return console("obliviate methods", obliviate("methods"))


BAD_BENCH = ("bench", "--dataset", "digts", "--forget", "rand:0.1", "--methods", "gradiff", "--set", "kl.lrr=3")


def _config_error() -> str:
    return console("obliviate " + " ".join(BAD_BENCH), obliviate(*BAD_BENCH, expect=2))


def _quickstart_table() -> str:
    """The table of `make run` (digits, every method, one seed), from the run's own Markdown report."""
    with tempfile.TemporaryDirectory() as tmp:
        obliviate("bench", "--dataset", "digits", "--methods", "all", "--seeds", "1", "--threads", "1",
                  "--out", tmp, "--no-progress", "--overwrite")
        records = json.loads((Path(tmp) / "results.json").read_text())
    cols = [("method", "method"), ("kind", "kind"), ("UA", "ua"), ("RA", "ra"), ("TA", "ta"), ("ToW", "tow"),
            ("ToW gap closed", "tow_gap_closed"), ("MIA AUC", "mia_auc"), ("time ratio", "wall_ratio")]
    lines = ["| " + " | ".join(c for c, _ in cols) + " |", "|" + "---|" * len(cols)]
    for r in records:
        cells = [f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for _, k in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _audit() -> str:
    """A digits run with three methods, then a 16-replica strong audit of it."""
    bench = ("bench", "--dataset", "digits", "--methods", "finetune,graddiff,kl", "--threads", "1",
             "--out", "runs/digits", "--no-progress")
    audit = ("audit", "--run", "runs/digits", "--replicas", "16", "--threads", "1", "--no-progress")
    with tempfile.TemporaryDirectory() as tmp:
        obliviate(*bench, cwd=Path(tmp))
        out = obliviate(*audit, cwd=Path(tmp))
    out = "\n".join(line for line in out.splitlines() if not line.startswith(("WARNING", "INFO")))
    shown = " ".join(a for a in bench if a != "--no-progress")
    return f"```console\n$ obliviate {shown}\n$ obliviate {' '.join(a for a in audit if a != '--no-progress')}\n{out}\n```\n"


def _forging() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        return console("obliviate mismatches forging --out runs/lab",
                       obliviate("mismatches", "forging", "--out", "runs/lab", cwd=Path(tmp)))


@dataclass(frozen=True)
class Example:
    make: Callable[[], str]
    cheap: bool


EXAMPLES: dict[str, Example] = {
    "methods": Example(_methods, cheap=True),
    "config-error": Example(_config_error, cheap=True),
    "quickstart-table": Example(_quickstart_table, cheap=False),
    "audit": Example(_audit, cheap=False),
    "forging": Example(_forging, cheap=False),
}


def blocks(text: str) -> dict[str, str]:
    return {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}


def render(text: str, *, cheap_only: bool) -> tuple[str, list[str]]:
    """README text with its examples regenerated, and the names of those that changed."""
    changed: list[str] = []

    def fill(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in EXAMPLES:
            raise SystemExit(f"README example {name!r} has no command in tools/readme_examples.py")
        example = EXAMPLES[name]
        if cheap_only and not example.cheap:
            return m.group(0)
        body = example.make()
        if body != m.group("body"):
            changed.append(name)
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(fill, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rerun the examples and rewrite README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when an example differs from its command")
    parser.add_argument("--cheap", action="store_true", help="only the examples that take seconds")
    args = parser.parse_args(argv)
    text = README.read_text()
    new, changed = render(text, cheap_only=args.cheap)
    if args.write:
        README.write_text(new)
        print(f"rewrote {', '.join(changed) or 'nothing (all examples current)'}")
        return 0
    if changed:
        print(f"README examples out of date: {', '.join(changed)}; run python tools/readme_examples.py --write")
        return 1
    print("README examples current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
