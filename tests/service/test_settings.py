"""Settings and keys files: every problem refused with its reason."""

from __future__ import annotations

import json

import pytest

from obliviate.errors import ConfigError
from obliviate.service.auth import KeyRing
from obliviate.service.settings import Settings, write_keys


def test_keys_file_problems_are_listed(tmp_path):
    p = tmp_path / "k.json"
    p.write_text(json.dumps({"keys": [{"key": "a", "name": "x", "role": "admin"}, {"name": "y", "role": "auditor"}]}))
    p.chmod(0o600)
    with pytest.raises(ConfigError) as e:
        KeyRing(p)
    assert "role 'admin'" in str(e.value) and "entry 1 has no 'key'" in str(e.value)


def test_plain_keys_readable_by_others_are_refused(tmp_path):
    p = write_keys(tmp_path / "k.json", [{"key": "a", "name": "x", "role": "auditor"}])
    assert KeyRing(p).lookup("a").role == "auditor" and KeyRing(p).lookup("b") is None
    p.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        KeyRing(p)
    import hashlib

    p.write_text(json.dumps({"keys": [{"key_sha256": hashlib.sha256(b"a").hexdigest(), "name": "x",
                                       "role": "auditor"}]}))
    assert KeyRing(p).lookup("a").name == "x"  # hashes only: readable is fine


def test_settings_refuse_a_signing_key_inside_the_store_and_missing_files(tmp_path):
    keys = write_keys(tmp_path / "k.json", [{"key": "a", "name": "x", "role": "auditor"}])
    with pytest.raises(ConfigError, match="inside the store"):
        Settings(store=tmp_path / "s", keys_file=keys, signing_key=tmp_path / "s" / "key.pem")
    with pytest.raises(ConfigError, match="no API keys file"):
        Settings(store=tmp_path / "s", keys_file=tmp_path / "none.json")
    with pytest.raises(ConfigError, match="OBLIVIATE_SERVICE_STORE"):
        Settings.from_env({})
