"""The currency other pallets use: transfer, deposit, withdraw, reserve, unreserve, slash.

Every function either succeeds completely or raises before writing, and keeps
TotalIssuance == sum(free + reserved) over all accounts: minting and burning go through
`_issue`/`_burn`, dust removed with a reaped account is burned.
"""

from __future__ import annotations

from runtime.context import BlockContext
from runtime.frame import ArithmeticOverflow, DispatchError
from runtime.pallets.balances import events
from runtime.pallets.balances.errors import ERRORS
from runtime.pallets.balances.events import DEPOSIT_INDEX, TRANSFER_INDEX, WITHDRAW_INDEX
from runtime.pallets.balances.storage import TotalIssuance
from runtime.pallets.indices import BALANCES
from runtime.pallets.system import events as system_events
from runtime.pallets.system.account import AccountRecord, get_account, put_account

MAX_BALANCE = (1 << 128) - 1


def free_balance(ctx: BlockContext, who: bytes) -> int:
    return get_account(ctx.state, who).free


def reserved_balance(ctx: BlockContext, who: bytes) -> int:
    return get_account(ctx.state, who).reserved


def _check_amount(amount: int) -> None:
    """Verify that an amount is a non-negative integer that fits a balance."""
    if not isinstance(amount, int) or amount < 0:
        raise DispatchError(("Arithmetic", ("Underflow", None)), f"amount {amount!r} is negative or not an integer")
    if amount > MAX_BALANCE:
        raise ArithmeticOverflow(f"amount {amount} does not fit a balance")


def _issue(ctx: BlockContext, amount: int) -> None:
    total = TotalIssuance.get(ctx.state) + amount
    if total > MAX_BALANCE:
        raise ArithmeticOverflow("total issuance would overflow")
    TotalIssuance.put(ctx.state, total)


def _burn(ctx: BlockContext, amount: int) -> None:
    TotalIssuance.put(ctx.state, TotalIssuance.get(ctx.state) - amount)


def _store(ctx: BlockContext, who: bytes, record: AccountRecord, existed: bool) -> None:
    """Write `record`, creating or reaping the account as its balance requires."""
    ed = ctx.params.existential_deposit
    if record.total < ed and record.consumers == 0:
        if record.total:
            _burn(ctx, record.total)
            events.deposit(ctx, "DustLost", {"account": who, "amount": record.total})
        record.free = record.reserved = 0
        record.providers = 0
        if existed:
            system_events.deposit(ctx, "KilledAccount", {"account": who})
    elif not existed:
        record.providers = 1
        system_events.deposit(ctx, "NewAccount", {"account": who})
        events.deposit(ctx, "Endowed", {"account": who, "free_balance": record.free})
    put_account(ctx.state, who, record)


def _check_keep(ctx: BlockContext, record: AccountRecord, keep_alive: bool) -> None:
    """Verify that `record` (after a debit) may stay as it is."""
    if record.total < ctx.params.existential_deposit and (keep_alive or record.consumers) and record.providers:
        raise ERRORS("Expendability", "the account would fall below the existential deposit")


def transfer(ctx: BlockContext, source: bytes, dest: bytes, amount: int, keep_alive: bool) -> None:
    _check_amount(amount)
    state = ctx.state
    sender = get_account(state, source)
    if sender.free < amount:
        raise ERRORS("InsufficientBalance", f"free balance {sender.free} is below {amount}")
    if source == dest:
        return
    sender.free -= amount
    _check_keep(ctx, sender, keep_alive)
    receiver = get_account(state, dest)
    existed = receiver.providers > 0
    if not existed and amount < ctx.params.existential_deposit:
        raise ERRORS("ExistentialDeposit", "the amount is below the existential deposit of a new account")
    if receiver.free + amount > MAX_BALANCE:
        raise ArithmeticOverflow("the receiver's balance would overflow")
    receiver.free += amount
    if existed and sender.total >= ctx.params.existential_deposit:
        put_account(state, source, sender)
        put_account(state, dest, receiver)
    else:
        _store(ctx, source, sender, True)
        _store(ctx, dest, receiver, existed)
    ctx.deposit_event_raw(BALANCES, TRANSFER_INDEX, source + dest + amount.to_bytes(16, "little"))


def withdraw(ctx: BlockContext, who: bytes, amount: int, keep_alive: bool = True, event: bool = True) -> None:
    """Take `amount` out of `who`'s free balance and out of total issuance (fees, burns)."""
    _check_amount(amount)
    record = get_account(ctx.state, who)
    if record.free < amount:
        raise ERRORS("InsufficientBalance", f"free balance {record.free} is below {amount}")
    record.free -= amount
    _check_keep(ctx, record, keep_alive)
    _burn(ctx, amount)
    _store(ctx, who, record, record.providers > 0)
    if event:
        events.deposit_who_amount(ctx, WITHDRAW_INDEX, who, amount)


def deposit_creating(ctx: BlockContext, who: bytes, amount: int, event: bool = True) -> None:
    """Add `amount` to `who` and to total issuance; below the existential deposit a new account
    is not created and the amount is not issued."""
    _check_amount(amount)
    record = get_account(ctx.state, who)
    existed = record.providers > 0
    if not existed and amount < ctx.params.existential_deposit:
        return
    if record.free + amount > MAX_BALANCE:
        raise ArithmeticOverflow("the balance would overflow")
    _issue(ctx, amount)
    record.free += amount
    _store(ctx, who, record, existed)
    if event:
        events.deposit_who_amount(ctx, DEPOSIT_INDEX, who, amount)


def credit_from_pot(ctx: BlockContext, who: bytes, amount: int) -> None:
    """Pay `amount` that was taken out of accounts earlier in the block (fees) and is still in
    total issuance; if it cannot make a new account (below the existential deposit) it is burned."""
    record = get_account(ctx.state, who)
    existed = record.providers > 0
    if not existed and amount < ctx.params.existential_deposit:
        _burn(ctx, amount)
        return
    record.free += amount
    _store(ctx, who, record, existed)
    events.deposit_who_amount(ctx, DEPOSIT_INDEX, who, amount)


def reserve(ctx: BlockContext, who: bytes, amount: int) -> None:
    """Move `amount` from free to reserved; the account must keep the existential deposit free."""
    _check_amount(amount)
    record = get_account(ctx.state, who)
    if record.free < amount or record.providers == 0:
        raise ERRORS("InsufficientBalance", f"free balance {record.free} is below {amount}")
    record.free -= amount
    record.reserved += amount
    put_account(ctx.state, who, record)
    events.deposit(ctx, "Reserved", {"who": who, "amount": amount})


def unreserve(ctx: BlockContext, who: bytes, amount: int) -> int:
    """Move up to `amount` from reserved back to free; returns what was moved."""
    _check_amount(amount)
    record = get_account(ctx.state, who)
    moved = min(amount, record.reserved)
    if moved:
        record.reserved -= moved
        record.free += moved
        put_account(ctx.state, who, record)
        events.deposit(ctx, "Unreserved", {"who": who, "amount": moved})
    return moved


def slash_reserved(ctx: BlockContext, who: bytes, amount: int) -> int:
    """Burn up to `amount` of `who`'s reserved balance; returns what was slashed."""
    _check_amount(amount)
    record = get_account(ctx.state, who)
    slashed = min(amount, record.reserved)
    if slashed:
        record.reserved -= slashed
        _burn(ctx, slashed)
        _store(ctx, who, record, True)
        events.deposit(ctx, "Slashed", {"who": who, "amount": slashed})
    return slashed


def repatriate_reserved(ctx: BlockContext, slashed: bytes, beneficiary: bytes, amount: int) -> int:
    """Move up to `amount` of `slashed`'s reserved balance to `beneficiary`'s free balance."""
    moved = slash_reserved(ctx, slashed, amount)
    if moved:
        deposit_creating(ctx, beneficiary, moved)
    return moved
