"""SISA training (Bourtoule et al. 2021): Sharded, Isolated, Sliced, Aggregated.

Exact unlearning by construction: each example influences one shard's models from its
slice on, so forgetting it retrains one shard from its last unaffected checkpoint, and
the result equals, bit for bit, training that shard from scratch without it.
"""

from obliviate.engine.sisa.aggregate import AGGREGATORS
from obliviate.engine.sisa.config import SisaConfig
from obliviate.engine.sisa.model import Sisa
from obliviate.engine.sisa.placement import PLACEMENTS
from obliviate.engine.sisa.receipts import ForgetReceipt, ErasureRequest, check_receipt_in_ledger, verify_receipt
from obliviate.engine.sisa.training import train_shard_reference
from obliviate.engine.sisa.verify import check_ledger, verify_store_ledger

__all__ = ["AGGREGATORS", "PLACEMENTS", "ForgetReceipt", "ErasureRequest", "Sisa", "SisaConfig", "check_ledger",
           "check_receipt_in_ledger", "train_shard_reference", "verify_receipt", "verify_store_ledger"]
