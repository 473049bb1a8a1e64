"""The registered guards; importing this package registers every one of them."""

from obliviate.suppression.guards import exact, fuzzy, icl, minhash, pii, semantic, system_prompt  # noqa: F401
