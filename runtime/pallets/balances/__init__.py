"""Balances pallet: free and reserved balances, transfers, the existential deposit, and the
reserve/unreserve/slash entry points other pallets use; total issuance kept exact."""

from runtime.pallets.balances.pallet import PALLET

__all__ = ["PALLET"]
