"""Sweeps and the hot wallet's band on a real anvil node (payments/eth/sweeper.py): final ETH
on deposit addresses moves to the hot wallet, a token after a gas top-up from the hot
wallet, a crash around the broadcast never sends twice, the hot wallet's excess over its
band goes to the cold Safe, and a hot wallet below its minimum is alerted once. After each
test the ledger's invariants hold and reconciliation (deposit addresses + hot wallet +
Safe against the books) is clean: the gas of every transaction was booked exactly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from web3 import Web3
from web3.exceptions import TransactionNotFound

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.metrics import HOT_WALLET_BELOW_MIN
from casino_app.core.settings import reset_settings_cache
from casino_app.payments import ledger, sender
from casino_app.payments.deposit_models import ChainDeposit
from casino_app.payments.eth import addresses, batcher
from casino_app.payments.eth.reconcile import reconcile
from casino_app.payments.eth.sweeper import Sweeper
from casino_app.payments.eth.watcher import Watcher, chain_assets
from casino_app.payments.models import JournalEntry
from casino_app.payments.signer import eth as signer_eth
from casino_app.payments.signer.seed import account_xpub
from casino_app.payments.withdrawal_models import WithdrawalBatch, WithdrawalBatchTx
from casino_app.security.models import AuditEvent

pytestmark = pytest.mark.ethereum

# Not anvil's mnemonic: its deposit addresses start empty (anvil funds its own ten).
MNEMONIC = ("abandon abandon abandon abandon abandon abandon abandon abandon abandon "
            "abandon abandon about")
GWEI = 10**9
ETH = 10**18
HOT_ETH = 10 * ETH
HOT_TOKENS = 1_000 * 10**6


class Crash(Exception):
    """A simulated process death at a fault point."""


class Env:
    def __init__(self, anvil, devnet) -> None:  # noqa: ANN001
        self.anvil, self.devnet, self.w3 = anvil, devnet, anvil.w3
        self.tokens = {"USDT": devnet["USDT"], "USDC": devnet["USDC"]}
        self.assets = chain_assets(self.w3, self.tokens)
        self.hot = signer_eth.hot_address()
        self.safe = devnet["safe"]
        self.watcher = Watcher(self.w3, self.assets, confirmations=2,
                               start_block=self.w3.eth.block_number)

    def sweeper(self, **kw) -> Sweeper:  # noqa: ANN003
        kw.setdefault("confirmations", 2)
        kw.setdefault("fee_bump_seconds", 3600)
        kw.setdefault("minimums", {})
        kw.setdefault("band", {})
        kw.setdefault("safe", self.safe)
        kw.setdefault("topup_gwei", 0)
        kw.setdefault("finality", "confirmations")
        return Sweeper(self.w3, self.tokens, **kw)

    def token(self, code: str):  # noqa: ANN201
        return self.w3.eth.contract(address=self.devnet[code], abi=self.devnet["abi"][code])

    def held(self, code: str, addr: str) -> int:
        if code == "ETH":
            return self.w3.eth.get_balance(addr)
        return self.token(code).functions.balanceOf(addr).call()

    def pay(self, to: str, wei: int) -> None:
        self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_transaction(
            {"from": self.anvil.accounts[1], "to": to, "value": wei}))

    def mint(self, code: str, to: str, amount: int) -> None:
        self.w3.eth.wait_for_transaction_receipt(self.token(code).functions.mint(
            to, amount).transact({"from": self.anvil.accounts[0]}))

    def settle(self, sw: Sweeper, rounds: int = 12) -> None:
        """Watcher and sweeper until nothing is open or new (a block mined per round)."""
        for _ in range(rounds):
            self.watcher.poll()
            res = sw.run()
            if not _open() and not res.created:
                return
            self.anvil.mine(1)
        raise AssertionError("the sweeper did not finish")

    def clean(self) -> None:
        """Ledger invariants and reconciliation (deposit addresses, hot wallet, Safe)."""
        with ledger_tx(readonly=True) as s:
            assert [(f.check, f.examples) for f in ledger.check_invariants(s)
                    if f.violations] == []
        self.watcher.poll()
        res = reconcile(self.w3, self.assets, [self.hot, self.safe])
        assert res.clean, [(i.kind, i.detail) for i in res.issues]


@pytest.fixture
def env(any_env: str, devnet, chain_state, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """Fresh ledger and chain state; MNEMONIC as the hot seed; the hot wallet holds 10 ETH
    and 1,000 USDT and USDC, booked as the house's capital (so reconciliation balances)."""
    anvil = chain_state
    monkeypatch.setenv("CASINO_ETH_XPUB", account_xpub(MNEMONIC))
    monkeypatch.setenv("CASINO_ETH_HOT_SEED", MNEMONIC)
    monkeypatch.setenv("CASINO_ETH_RPC_URL", anvil.url)
    monkeypatch.setenv("CASINO_ETH_TOKENS", f"USDT:{devnet['USDT']},USDC:{devnet['USDC']}")
    reset_settings_cache()
    signer_eth.forget()
    monkeypatch.setattr(sender, "fault", None)
    e = Env(anvil, devnet)
    e.pay(e.hot, HOT_ETH)
    for code in ("USDT", "USDC"):
        e.mint(code, e.hot, HOT_TOKENS)
    with ledger_tx() as s:
        for code in ("ETH", "USDT", "USDC"):
            held = e.held(code, e.hot) + e.held(code, e.safe)
            per_unit = GWEI if code == "ETH" else 1
            assert held % per_unit == 0
            ledger.transfer(s, f"capital:{code}", "capital",
                            ledger.house_account(s, code, "custody"),
                            ledger.house_account(s, code, "bankroll"), held // per_unit)
    yield e
    anvil.automine(True)
    reset_settings_cache()
    signer_eth.forget()


def _open() -> int:
    with ledger_tx(readonly=True) as s:
        return s.execute(select(func.count()).select_from(WithdrawalBatch).where(
            WithdrawalBatch.state.in_(("signed", "sent")))).scalar_one()


def _rows(kind: str | None = None) -> list[WithdrawalBatch]:
    with ledger_tx(readonly=True) as s:
        q = select(WithdrawalBatch).order_by(WithdrawalBatch.id)
        if kind:
            q = q.where(WithdrawalBatch.kind == kind)
        rows = s.execute(q).scalars().all()
        s.expunge_all()
        return list(rows)


def _gas_entries() -> list[str]:
    with ledger_tx(readonly=True) as s:
        return list(s.execute(select(JournalEntry.key).where(
            JournalEntry.key.like("eth-gas:%")).order_by(JournalEntry.id)).scalars())


def _balances(*players: str) -> dict[str, dict[str, tuple[int, int]]]:
    with ledger_tx(readonly=True) as s:
        return {p: {c: (b.balance, b.reserved) for c, b in
                    ledger.player_balances(s, p).items()} for p in players}


def test_eth_on_two_deposit_addresses_is_swept_to_the_hot_wallet(env: Env) -> None:
    a, b = addresses.deposit_address("p-a"), addresses.deposit_address("p-b")
    env.pay(a, ETH)
    env.pay(b, ETH // 2 + 7)          # a sub-gwei rest too
    env.watcher.poll()                # b's block is the tip: 1 confirmation of 2
    sw = env.sweeper()
    hot_before = env.held("ETH", env.hot)
    res = sw.run()
    assert (res.swept, res.created) == (1, 1)   # only a's deposit is final
    assert [r.from_address for r in _rows("sweep")] == [a]
    env.settle(sw)
    credited = _balances("p-a", "p-b")
    assert credited == {"p-a": {"ETH": (ETH // GWEI, 0)}, "p-b": {"ETH": (ETH // GWEI // 2, 0)}}
    sweeps = _rows("sweep")
    assert sorted(r.from_address for r in sweeps) == sorted([a, b])
    assert {(r.state, r.to_address, r.currency) for r in sweeps} == {
        ("confirmed", env.hot, "ETH")}
    moved = sum(int(r.value_wei) for r in sweeps)
    assert env.held("ETH", env.hot) == hot_before + moved
    # what stays on a deposit address is the unused gas reserve, below one transfer's gas
    for r, sent in ((a, ETH), (b, ETH // 2 + 7)):
        row = next(x for x in sweeps if x.from_address == r)
        left = env.held("ETH", r)
        assert left == sent - int(row.value_wei) - int(row.gas_fee_wei)
        assert 0 <= left < 3 * row.gas_limit * 10 * GWEI
    assert sorted(_gas_entries()) == sorted(f"eth-gas:ethereum:{r.tx_hash}" for r in sweeps)
    assert _balances("p-a", "p-b") == credited   # sweeps move no player money
    with ledger_tx(readonly=True) as s:  # raw transactions are dropped once final
        assert s.execute(select(WithdrawalBatchTx.raw_tx)).scalars().all() == [None, None]
    assert env.sweeper().run().created == 0     # nothing left worth sweeping
    env.clean()


def test_usdt_is_swept_after_a_gas_top_up(env: Env) -> None:
    c = addresses.deposit_address("p-c")
    env.mint("USDT", c, 25_000_000)
    env.watcher.poll()
    env.anvil.mine(1)
    assert env.held("ETH", c) == 0
    hot_usdt = env.held("USDT", env.hot)
    # the rest of the top-up stays for the next token sweep: below the ETH minimum
    sw = env.sweeper(minimums={"ETH": 1_000_000})
    env.watcher.poll()
    res = sw.run()
    assert (res.topped_up, res.swept) == (1, 0)
    env.settle(sw)
    rows = _rows()
    assert [(r.kind, r.currency, r.from_address, r.state) for r in rows] == [
        ("topup", "ETH", env.hot, "confirmed"), ("sweep", "USDT", c, "confirmed")]
    topup, sweep = rows
    assert topup.to_address == c and sweep.to_address == env.devnet["USDT"]
    assert env.held("USDT", c) == 0
    assert env.held("USDT", env.hot) == hot_usdt + 25_000_000
    assert env.held("ETH", c) == int(topup.value_wei) - int(sweep.gas_fee_wei)
    assert sorted(_gas_entries()) == sorted(f"eth-gas:ethereum:{r.tx_hash}" for r in rows)
    # the top-up is ours, not a deposit: nothing recorded, nothing credited
    with ledger_tx(readonly=True) as s:
        assert s.execute(select(ChainDeposit.currency)).scalars().all() == ["USDT"]
    assert _balances("p-c") == {"p-c": {"USDT": (25_000_000, 0)}}
    env.clean()


@pytest.mark.parametrize("point", ["signed", "broadcast"])
def test_a_crash_around_the_broadcast_never_sends_twice(env: Env, point: str) -> None:
    a = addresses.deposit_address("p-crash")
    env.pay(a, 2 * ETH)
    env.anvil.mine(1)
    env.watcher.poll()
    hot_before = env.held("ETH", env.hot)

    def die(at: str, batch_id: int) -> None:
        if at == point:
            raise Crash(at)

    sender.fault = die
    with pytest.raises(Crash):
        env.sweeper().run()
    sender.fault = None
    [row] = _rows("sweep")
    [version] = _versions(row.id)
    assert row.state == "signed"
    known = _known(env.w3, version.tx_hash)
    assert known is (point == "broadcast")
    sw = env.sweeper()  # a restarted process
    res = sw.run()
    assert res.created == 0
    assert res.rebroadcast == (point == "signed")
    env.settle(sw)
    [row] = _rows("sweep")
    assert row.state == "confirmed" and row.tx_hash == version.tx_hash
    assert [v.tx_hash for v in _versions(row.id)] == [version.tx_hash]
    assert env.held("ETH", env.hot) == hot_before + int(row.value_wei)
    assert env.w3.eth.get_transaction_count(a) == 1
    assert _gas_entries() == [f"eth-gas:ethereum:{row.tx_hash}"]
    env.clean()


def test_hot_wallet_overflow_is_swept_to_cold(env: Env) -> None:
    """Above max the excess goes to the Safe, down to the middle of the band."""
    band = {"ETH": (1 * ETH // GWEI, 5 * ETH // GWEI), "USDT": (100_000_000, 500_000_000)}
    sw = env.sweeper(band=band)
    safe_before = {c: env.held(c, env.safe) for c in ("ETH", "USDT", "USDC")}
    hot_eth = env.held("ETH", env.hot)
    res = sw.run()
    assert (res.to_cold, res.below_min) == (2, 0)
    # the batcher shares the hot wallet's nonces but leaves the sweeper's rows alone
    env.anvil.mine(2)
    idle = batcher.Batcher(env.w3, env.devnet["batch"], env.tokens, confirmations=2).run()
    assert not any(idle.as_dict().values()) and _open() == 2
    env.settle(sw)
    rows = _rows("to_cold")
    assert [(r.currency, r.from_address, r.nonce, r.state) for r in rows] == [
        ("ETH", env.hot, 0, "confirmed"), ("USDT", env.hot, 1, "confirmed")]
    assert env.held("ETH", env.safe) == safe_before["ETH"] + hot_eth - 3 * ETH
    assert env.held("USDT", env.safe) == safe_before["USDT"] + HOT_TOKENS - 300_000_000
    assert env.held("USDT", env.hot) == 300_000_000
    assert env.held("USDC", env.safe) == safe_before["USDC"]   # no band: untouched
    gas = sum(int(r.gas_fee_wei) for r in rows)
    assert env.held("ETH", env.hot) == 3 * ETH - gas
    assert sw.run().created == 0     # inside the band now
    env.clean()


def test_below_minimum_alerts_once_per_crossing(env: Env) -> None:
    def audited() -> int:
        with identity_tx() as s:
            return s.execute(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action == "chain.hot_wallet_low")).scalar_one()

    gauge = HOT_WALLET_BELOW_MIN.labels("ETH")
    sw = env.sweeper(band={"ETH": (20 * ETH // GWEI, 50 * ETH // GWEI)})
    assert sw.run().below_min == 1
    assert sw.run().below_min == 1
    assert (audited(), gauge._value.get()) == (1, 1)
    env.pay(env.hot, 15 * ETH)    # refilled (booked like the rest of the capital)
    with ledger_tx() as s:
        ledger.transfer(s, "capital:ETH:refill", "capital",
                        ledger.house_account(s, "ETH", "custody"),
                        ledger.house_account(s, "ETH", "bankroll"), 15 * ETH // GWEI)
    assert sw.run().below_min == 0
    assert gauge._value.get() == 0
    sw.band = {"ETH": (30 * ETH // GWEI, 50 * ETH // GWEI)}   # crossed again
    assert sw.run().below_min == 1
    assert sw.run().below_min == 1
    assert (audited(), gauge._value.get()) == (2, 1)
    assert _rows() == []
    env.clean()


def _versions(batch_id: int) -> list[WithdrawalBatchTx]:
    with ledger_tx(readonly=True) as s:
        rows = s.execute(select(WithdrawalBatchTx).where(
            WithdrawalBatchTx.batch_id == batch_id).order_by(WithdrawalBatchTx.version)
        ).scalars().all()
        s.expunge_all()
        return list(rows)


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        w3.eth.get_transaction(tx_hash)
        return True
    except TransactionNotFound:
        return False


def test_eth_sweep_job_is_registered_with_a_node_and_uses_the_settings(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from casino_app.jobs.builtin import builtin_jobs
    from casino_app.payments.eth import sweeper

    monkeypatch.setenv("CASINO_ETH_SWEEP_SECONDS", "45")
    monkeypatch.setenv("CASINO_ETH_CONFIRMATIONS", "1")
    monkeypatch.setenv("CASINO_ETH_SWEEP_MIN", "ETH:500000000")      # 0.5 ETH
    monkeypatch.setenv("CASINO_ETH_HOT_BAND", "ETH:1000000000:9000000000")
    monkeypatch.setenv("CASINO_ETH_SAFE_ADDRESS", env.safe)
    reset_settings_cache()
    monkeypatch.setattr(sweeper, "_sweeper", None)
    jobs = {j.name: j for j in builtin_jobs()}
    assert jobs["eth-sweep"].interval == 45
    small, big = addresses.deposit_address("p-small"), addresses.deposit_address("p-big")
    env.pay(small, ETH // 4)          # below the sweep minimum: stays
    env.pay(big, 2 * ETH)
    env.watcher.poll()
    out = jobs["eth-sweep"].func()
    assert (out["swept"], out["to_cold"]) == (1, 1)   # 10 ETH in the hot wallet > 9
    assert [r.from_address for r in _rows("sweep")] == [big]
    env.anvil.mine(1)
    env.watcher.poll()
    out = jobs["eth-sweep"].func()
    assert out["confirmed"] == 2 and _open() == 0
    assert env.held("ETH", small) == ETH // 4
    with pytest.raises(ValueError, match="CASINO_ETH_HOT_BAND"):
        sweeper.parse_band("ETH:9:1")
    monkeypatch.setenv("CASINO_ETH_RPC_URL", "")
    reset_settings_cache()
    assert "eth-sweep" not in {j.name for j in builtin_jobs()}
    env.clean()


def _house_eth() -> list[tuple[str, str, int]]:
    """The house's ETH fee postings as an operator reads them: (key, memo, amount in gwei;
    negative: spent), oldest first."""
    with ledger_tx(readonly=True) as s:
        lines = ledger.entries_of(s, ledger.HOUSE, limit=1000)
    return [(ln.key, ln.memo, ln.amount) for ln in reversed(lines)
            if ln.currency == "ETH" and ln.balance_kind == "fees"]


def test_a_gas_top_up_is_booked_as_the_fees_it_paid_and_its_rest_stays_custody(
        env: Env) -> None:
    """The top-up moves ETH between our own addresses: the house's fees are exactly the
    gas burnt (the top-up's own and the token sweep's, paid from the top-up), what is left
    of the top-up on the deposit address stays custody and is NOT sent back on its own (a
    21,000-gas transfer that the next token sweep would have to top up again); it moves
    with the address's next ETH deposit. Reconciliation is clean at every step."""
    c = addresses.deposit_address("p-c")
    env.mint("USDT", c, 25_000_000)
    env.anvil.mine(1)
    with ledger_tx(readonly=True) as s:
        custody_before = ledger.house_total(s, "ETH", "custody")
    sw = env.sweeper()

    def rounds(n: int) -> None:   # watcher, sweeper, reconciliation clean, next block
        for _ in range(n):
            env.watcher.poll()
            sw.run()
            env.clean()
            env.anvil.mine(1)

    rounds(6)
    topup, sweep = _rows()
    assert (topup.kind, topup.currency, topup.to_address, topup.state) == (
        "topup", "ETH", c, "confirmed")
    assert (sweep.kind, sweep.currency, sweep.from_address, sweep.state) == (
        "sweep", "USDT", c, "confirmed")
    assert env.held("USDT", c) == 0
    left = env.held("ETH", c)
    assert left == int(topup.value_wei) - int(sweep.gas_fee_wei) > 0

    def gwei_up(wei: str | None) -> int:
        return -(-int(wei or 0) // GWEI)

    assert _house_eth() == [
        (f"eth-gas:ethereum:{topup.tx_hash}", f"gas of ethereum topup {topup.id}",
         -gwei_up(topup.gas_fee_wei)),
        (f"eth-gas:ethereum:{sweep.tx_hash}", f"gas of ethereum sweep {sweep.id}",
         -gwei_up(sweep.gas_fee_wei))]
    with ledger_tx(readonly=True) as s:   # custody: only the gas left it
        assert ledger.house_total(s, "ETH", "custody") - custody_before == \
            gwei_up(topup.gas_fee_wei) + gwei_up(sweep.gas_fee_wei)
    # later runs leave the rest of the top-up where it is (no ETH sweep of it alone)
    rounds(3)
    assert len(_rows()) == 2 and env.held("ETH", c) == left

    # the player deposits ETH to the same address: one ETH sweep moves it with the rest
    hot_before = env.held("ETH", env.hot)
    env.pay(c, ETH)
    rounds(6)
    [eth_sweep] = _rows("sweep")[1:]
    assert (eth_sweep.currency, eth_sweep.state) == ("ETH", "confirmed")
    assert env.held("ETH", env.hot) == hot_before + int(eth_sweep.value_wei)
    assert int(eth_sweep.value_wei) > ETH       # the deposit and the top-up's rest
    assert env.held("ETH", c) == left + ETH - int(eth_sweep.value_wei) \
        - int(eth_sweep.gas_fee_wei)
    assert _house_eth()[-1] == (f"eth-gas:ethereum:{eth_sweep.tx_hash}",
                                f"gas of ethereum sweep {eth_sweep.id}",
                                -gwei_up(eth_sweep.gas_fee_wei))
    assert _balances("p-c") == {"p-c": {"USDT": (25_000_000, 0), "ETH": (ETH // GWEI, 0)}}
    env.clean()


def _audited(action: str) -> int:
    with identity_tx() as s:
        return s.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == action)).scalar_one()


def test_the_low_band_alert_is_sent_once_per_crossing_across_restarts(env: Env) -> None:
    """The band state is stored: a restarted jobs process that finds the hot wallet still
    low does not alert again; one that finds it low after it was seen back within the
    band does (a new crossing)."""
    low = {"ETH": (20 * ETH // GWEI, 50 * ETH // GWEI)}
    within = {"ETH": (1 * ETH // GWEI, 50 * ETH // GWEI)}
    assert env.sweeper(band=low).run().below_min == 1
    assert _audited("chain.hot_wallet_low") == 1
    for _ in range(2):   # restarts while still low
        assert env.sweeper(band=low).run().below_min == 1
    assert _audited("chain.hot_wallet_low") == 1
    assert env.sweeper(band=within).run().below_min == 0     # back within the band
    assert env.sweeper(band=low).run().below_min == 1        # restarted: low again
    assert env.sweeper(band=low).run().below_min == 1
    assert _audited("chain.hot_wallet_low") == 2
    assert HOT_WALLET_BELOW_MIN.labels("ETH")._value.get() == 1


def test_a_run_reads_only_addresses_with_a_final_deposit_since_their_last_sweep(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = addresses.deposit_address("p-a"), addresses.deposit_address("p-b")
    env.pay(a, ETH)
    env.mint("USDT", b, 5_000_000)
    env.anvil.mine(1)
    sw = env.sweeper()
    env.settle(sw)
    assert {(r.from_address, r.currency) for r in _rows("sweep")} == {(a, "ETH"), (b, "USDT")}
    read: list[set[str]] = []
    real = Sweeper._balances

    def spy(self, pairs, block):  # noqa: ANN001, ANN202
        read.append({addr for addr, _ in pairs})
        return real(self, pairs, block)

    monkeypatch.setattr(Sweeper, "_balances", spy)
    for _ in range(3):      # everything swept: no balance read at all
        env.watcher.poll()
        sw.run()
        env.anvil.mine(1)
    assert read == []
    env.pay(b, ETH // 2)    # a new deposit: b only, once it is final
    env.watcher.poll()
    assert sw.run().created == 0 and read == []
    env.anvil.mine(1)
    env.settle(sw)
    assert read and all(r == {b} for r in read)
    assert [(r.from_address, r.currency) for r in _rows("sweep")][-1] == (b, "ETH")
    env.clean()


def test_a_token_sweep_that_moved_nothing_is_retried_after_a_backoff_and_alerted(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token whose transfer mines without moving anything (status 1, no Transfer log):
    the sweep failed, its gas was spent; the address is tried again only after a wait that
    doubles, and the third failure in a row is logged as an error and audited once."""
    from types import SimpleNamespace

    from casino_app.core.clock import utcnow
    from casino_app.payments.eth import chain, sweeper

    real_data = chain.erc20_transfer_data
    monkeypatch.setattr(sweeper, "chain_tools", SimpleNamespace(**{
        **vars(chain), "erc20_transfer_data": lambda to, amount: real_data(to, 0)}))
    monkeypatch.setattr(Sweeper, "_succeeded", lambda self, b, receipt: b.kind == "topup")
    clock = [utcnow()]
    monkeypatch.setattr(sweeper, "utcnow", lambda: clock[0])
    c = addresses.deposit_address("p-c")
    env.mint("USDT", c, 25_000_000)
    env.anvil.mine(1)
    sw = env.sweeper()

    def attempts() -> list[str]:
        return [r.state for r in _rows("sweep")]

    env.settle(sw)
    assert attempts() == ["failed"] and env.held("USDT", c) == 25_000_000
    for wait in (600, 1200):
        clock[0] += timedelta(seconds=wait - 1)   # not yet
        env.settle(sw)
        assert len(attempts()) == 3 - (1200 // wait)
        clock[0] += timedelta(seconds=1)
        env.settle(sw)
    assert attempts() == ["failed"] * 3
    assert _audited("chain.sweep_failing") == 1
    clock[0] += timedelta(seconds=2400)
    env.settle(sw)
    assert attempts() == ["failed"] * 4
    assert _audited("chain.sweep_failing") == 1     # audited once, at the third
    # each failed try spent gas (booked: reconciliation balances), nothing else moved
    assert env.held("USDT", c) == 25_000_000
    assert sorted(_gas_entries()) == sorted(f"eth-gas:ethereum:{r.tx_hash}" for r in _rows())
    env.clean()
