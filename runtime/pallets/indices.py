"""construct_runtime!: every pallet's stable index (the first byte of its calls and events)."""

SYSTEM = 0
TIMESTAMP = 1
BALANCES = 2
TRANSACTION_PAYMENT = 3
STAKING = 4
SUDO = 5
ML_COMPUTE = 6
OFFENCES = 7
