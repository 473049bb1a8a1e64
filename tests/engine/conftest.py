"""Engine tests sign their ledgers with a key in a temporary folder, never the user's own."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _ledger_key(tmp_path_factory):
    key = tmp_path_factory.mktemp("keys") / "ledger-ed25519.pem"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OBLIVIATE_LEDGER_KEY", str(key))
        yield key


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray instance with 2 CPUs for every Ray test of the session (Ray starts in seconds, not free)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install obliviate[ray]); Ray paths not tested")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
