"""``obliviate serve`` as a real process on a free loopback port, and ``serve --worker``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service.conftest import KEYS, free_port, make_settings

SRC = str(Path(__file__).resolve().parents[2] / "src")
CLI = [sys.executable, "-c", "from obliviate.cli.main import main; main()"]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_serve_answers_health_openapi_and_roles(tmp_path):
    import httpx

    s = make_settings(tmp_path)
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--port", str(port), "--store", str(s.store), "--keys", str(s.keys_file),
                             "--deployments", str(s.deployments_file), "--key-file", str(s.signing_key)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # bounded: 30 s
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode())
            time.sleep(0.1)
        else:
            raise AssertionError("obliviate serve did not answer within 30 s")
        spec = httpx.get(f"{url}/openapi.json").json()
        assert spec["info"]["title"] == "obliviate deletion service"
        assert httpx.get(f"{url}/dashboard", headers={"X-API-Key": KEYS["requester"]}).status_code == 403
        assert httpx.get(f"{url}/dashboard", headers={"X-API-Key": KEYS["auditor"]}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_worker_until_empty_and_clean_errors(tmp_path):
    s = make_settings(tmp_path)
    r = subprocess.run([*CLI, "serve", "--worker", "--until-empty", "--store", str(s.store), "--keys",
                        str(s.keys_file), "--deployments", str(s.deployments_file), "--key-file", str(s.signing_key)],
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ran 0 request(s)" in r.stderr
    bad = subprocess.run([*CLI, "serve", "--keys", str(tmp_path / "missing.json")], env=_env(), capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "No API keys file" in bad.stderr and "Traceback" not in bad.stderr
    json.loads(s.keys_file.read_text())  # untouched


def test_auditor_is_loaded_by_name(tmp_path):
    from obliviate.errors import ConfigError
    from obliviate.service.settings import Settings

    s = make_settings(tmp_path)
    named = Settings(**{**s.__dict__, "auditor": "obliviate.cli.plan:bench_auditor"})
    assert named.load_auditor().__name__ == "bench_auditor"
    assert Settings.from_env(named.to_env()).auditor == "obliviate.cli.plan:bench_auditor"
    with pytest.raises(ConfigError, match="could not be loaded"):
        Settings(**{**s.__dict__, "auditor": "obliviate.cli.plan:nope"}).load_auditor()
    with pytest.raises(ConfigError, match="module:function"):
        Settings(**{**s.__dict__, "auditor": "no-colon"})
