"""The deletion service: a FastAPI app over a request store, and a worker process.

``create_app(Settings(...))`` builds the app (:mod:`.app`); roles and API keys are in
:mod:`.auth`; the store interface is :mod:`.store` with the embedded SQLite one in
:mod:`.sqlite`; the worker (``python -m obliviate.service.worker``) is :mod:`.worker`.
Nothing in obliviate imports this package.
"""

from obliviate.service.app import create_app
from obliviate.service.settings import Settings, write_keys
from obliviate.service.store import STATES, RequestStore
from obliviate.service.worker import Worker

__all__ = ["RequestStore", "STATES", "Settings", "Worker", "create_app", "write_keys"]
