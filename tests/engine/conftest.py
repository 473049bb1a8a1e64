"""Engine tests sign their ledgers with a key in a temporary folder, never the user's own."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def _ledger_key(tmp_path_factory):
    key = tmp_path_factory.mktemp("keys") / "ledger-ed25519.pem"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OBLIVIATE_LEDGER_KEY", str(key))
        yield key
