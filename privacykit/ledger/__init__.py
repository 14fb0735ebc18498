"""The ledger: placeholder until the ledger issue lands."""
