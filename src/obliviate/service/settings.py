"""The service's settings: where the request store is, the API keys and roles, the deployments.

``create_app(Settings(...))`` takes them; :meth:`Settings.from_env` reads ``OBLIVIATE_SERVICE_*``
variables (how ``obliviate serve`` hands them to uvicorn's factory and to the worker process).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError
from obliviate.policy import Deployments

ENV = {"store": "OBLIVIATE_SERVICE_STORE", "keys": "OBLIVIATE_SERVICE_KEYS",
       "deployments": "OBLIVIATE_SERVICE_DEPLOYMENTS", "signing_key": "OBLIVIATE_SERVICE_SIGNING_KEY",
       "backend": "OBLIVIATE_SERVICE_BACKEND", "auditor": "OBLIVIATE_SERVICE_AUDITOR"}


@dataclass
class Settings:
    """store: the service folder (``requests.sqlite`` and the deployments' work folder live there).
    keys_file: JSON ``{"keys": [{"key" | "key_sha256": ..., "name": ..., "role": ...}]}``.
    deployments_file: a policy deployments file (None: the built-in ones).
    signing_key: the Ed25519 key file that signs ledgers and certificates (kept outside ``store``).
    due_soon_days: a request this close to its due date is flagged ``due soon``.
    generators: deployment name -> callable prompt -> text, served through that deployment's guards.
    auditor: ``"module:function"``, the strong audit an approximate step needs (``obliviate serve``
    names ``obliviate.cli.plan:bench_auditor``, as ``obliviate handle`` uses); None: approximate steps
    are recorded as not honoured, for want of an audit.
    """

    store: Path
    keys_file: Path
    deployments_file: Path | None = None
    signing_key: Path | None = None
    backend: str = "sqlite"
    due_soon_days: int = 7
    batch_limit: int = 32
    generators: dict[str, Callable[[str], str]] = field(default_factory=dict)
    auditor: str | None = None

    def __post_init__(self) -> None:
        self.store = Path(self.store)
        self.keys_file = Path(self.keys_file)
        problems = []
        if not self.keys_file.is_file():
            problems.append(f"no API keys file at {self.keys_file} (write {{'keys': [{{'key': ..., 'name': ..., "
                            "'role': 'requester|reviewer|operator|auditor'}]}})")
        if self.deployments_file is not None and not Path(self.deployments_file).is_file():
            problems.append(f"no deployments file at {self.deployments_file}")
        if self.signing_key is not None and Path(self.signing_key).resolve().is_relative_to(self.store.resolve()):
            problems.append(f"the signing key {self.signing_key} is inside the store {self.store}; keep it outside "
                            "every store (SECURITY.md)")
        if self.auditor is not None and ":" not in self.auditor:
            problems.append(f"'auditor' must be 'module:function'; got {self.auditor!r}")
        if self.due_soon_days < 0:
            problems.append(f"'due_soon_days' must be >= 0; got {self.due_soon_days}")
        if problems:
            raise ConfigError("The service settings have problems: " + "; ".join(problems) + ".")

    @property
    def db_path(self) -> Path:
        return self.store / "requests.sqlite"

    @property
    def workdir(self) -> Path:
        return self.store / "work"

    def deployments(self) -> Deployments:
        return Deployments.load(self.deployments_file)

    def to_env(self) -> dict[str, str]:
        env = {ENV["store"]: str(self.store), ENV["keys"]: str(self.keys_file), ENV["backend"]: self.backend}
        if self.deployments_file is not None:
            env[ENV["deployments"]] = str(self.deployments_file)
        if self.signing_key is not None:
            env[ENV["signing_key"]] = str(self.signing_key)
        if self.auditor is not None:
            env[ENV["auditor"]] = self.auditor
        return env

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        missing = [v for k, v in ENV.items() if k in ("store", "keys") and not env.get(v)]
        if missing:
            raise ConfigError(f"Set {', '.join(missing)} (obliviate serve sets them from --store and --keys).")
        kw: dict[str, Any] = {"store": Path(env[ENV["store"]]), "keys_file": Path(env[ENV["keys"]]),
                              "backend": env.get(ENV["backend"], "sqlite")}
        if env.get(ENV["deployments"]):
            kw["deployments_file"] = Path(env[ENV["deployments"]])
        if env.get(ENV["signing_key"]):
            kw["signing_key"] = Path(env[ENV["signing_key"]])
        if env.get(ENV["auditor"]):
            kw["auditor"] = env[ENV["auditor"]]
        return cls(**kw)

    def load_auditor(self) -> Callable[..., Any] | None:
        """The auditor named by ``auditor`` (imported by name: a plug-in, like uvicorn's app string)."""
        if self.auditor is None:
            return None
        import importlib

        module, _, attr = self.auditor.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"The auditor {self.auditor!r} could not be loaded ({exc}).") from None
        if not callable(fn):
            raise ConfigError(f"The auditor {self.auditor!r} is not callable.")
        return fn


def write_keys(path: str | os.PathLike[str], keys: list[dict[str, str]]) -> Path:
    """Write a keys file (mode 0600): ``[{"key": ..., "name": ..., "role": ...}]``."""
    p = Path(path)
    p.write_text(json.dumps({"keys": keys}, indent=2))
    p.chmod(0o600)
    return p


__all__ = ["ENV", "Settings", "write_keys"]
