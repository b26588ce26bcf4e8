"""The platform's own background jobs, registered when a runner starts.

To add a job in a later issue: write the work as a plain function (or ``async def``)
in its layer (``payments/``, ``users/``...), idempotent and resuming from what it stored,
then add one line to ``_builtin_jobs`` below. The runner gives it a lease, an
interval and a row in ``job_state``; nothing else is needed.
"""

from __future__ import annotations

from functools import lru_cache

from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.jobs.runner import Job, register, registered
from casino_app.payments.rates import refresh as rates_refresh
from casino_app.security.anchors import anchor_now

log = get_logger("casino.jobs")

HOUR = 3600.0
AUDIT_OUTBOX_SECONDS = 15.0
WITHDRAWAL_NOTICES_SECONDS = 30.0


def identity_cleanup() -> dict[str, int]:
    """Delete expired sessions, challenges, tokens and old login attempts."""
    from casino_app.users.maintenance import purge_expired

    removed = purge_expired()
    # "action_tokens" would be masked by the log redactor (it looks like a secret key).
    log.info("identity_cleanup_done", deleted={k.replace("_tokens", "_links"): v
                                              for k, v in removed.items()})
    return removed


def reserves_publish() -> dict[str, int]:
    from casino_app.payments.reserves import publish

    doc = publish()["proof"]
    return {"short": sum(1 for c in doc["currencies"].values() if not c["covered"])}


def provider_checks() -> dict[str, int]:
    from casino_app.games.providers.honesty import run_checks

    return run_checks()


def loyalty_accrue() -> dict[str, int]:
    from casino_app.games.loyalty.accrual import accrue

    return accrue()


def ledger_check() -> dict[str, int]:
    from casino_app.payments.checks import run_check

    return {f.check: f.violations for f in run_check() if f.violations}


def audit_outbox() -> dict[str, int]:
    from casino_app.security.outbox import deliver_pending

    return deliver_pending()


def withdrawal_notices() -> dict[str, int]:
    from casino_app.users.withdrawal_guard import send_notices

    return send_notices()


def eth_watch() -> dict[str, int]:
    from casino_app.payments.eth.watcher import watch_once

    return watch_once()


def eth_batch() -> dict[str, int]:
    from casino_app.payments.eth.batcher import batch_once
    from casino_app.payments.eth.safe_exec import safe_once

    safe = safe_once()  # fully signed Safe payments: recorded here, broadcast by the batcher
    return {**batch_once(), **safe}


def eth_sweep() -> dict[str, int]:
    from casino_app.payments.eth.sweeper import sweep_once

    return sweep_once()


def eth_reconcile() -> dict[str, int]:
    from casino_app.payments.eth.reconcile import run_reconcile

    return run_reconcile()


def btc_watch() -> dict[str, int]:
    from casino_app.payments.btc.watcher import watch_once

    return watch_once()


def btc_batch() -> dict[str, int]:
    from casino_app.payments.btc.batcher import batch_once
    from casino_app.payments.btc.cold_sender import cold_once

    # cold payments by PSBT (recorded by the web process once two admins approved):
    # rebroadcast, settled, and those whose coins the chain spent resolved (first, like
    # Ethereum's Safe step; its own errors are logged and do not stop the batcher)
    cold = cold_once()
    return {**batch_once(), **cold}


def btc_sweep() -> dict[str, int]:
    from casino_app.payments.btc.sweeper import sweep_once

    return sweep_once()


def btc_reconcile() -> dict[str, int]:
    from casino_app.payments.btc.reconcile import run_reconcile

    return run_reconcile()


@lru_cache(maxsize=4)
def _builtin_jobs(audit_anchor_seconds: int, eth: tuple[float, ...] | None,
                  rates_seconds: float | None = None,
                  btc: tuple[float, ...] | None = None,
                  provider_checks_seconds: float = 60.0,
                  loyalty_seconds: float = 60.0) -> tuple[Job, ...]:
    # Cached: the same settings give the very same Job objects, so registering is a no-op.
    chain = () if eth is None else (
        # Follow the Ethereum node: deposits, confirmations, reorgs (payments.eth.watcher).
        Job("eth-watch", eth[0], eth_watch),
        # Compare the books with the chain (payments.eth.reconcile).
        Job("eth-reconcile", eth[1], eth_reconcile),
        # Pay queued withdrawals from the hot wallet (payments.eth.batcher), and large
        # ones and refills signed by the Safe's owners (payments.eth.safe_exec).
        Job("eth-batch", eth[2], eth_batch),
        # Sweep deposit addresses to the hot wallet, keep the hot wallet within its band
        # (excess to the Safe, an alert below it) (payments.eth.sweeper).
        Job("eth-sweep", eth[3], eth_sweep),
    )
    bitcoin = () if btc is None else (
        # Follow the Bitcoin node: blocks and mempool, deposits, confirmations, reorgs and
        # the UTXO set of our wallets (payments.btc.watcher).
        Job("btc-watch", btc[0], btc_watch),
        # Pay queued BTC withdrawals from the hot wallet, one transaction per interval
        # (payments.btc.batcher), and follow the cold payments two admins approved
        # (payments.btc.cold_sender).
        Job("btc-batch", btc[1], btc_batch),
        # Sweep final deposit coins into the hot wallet, keep the hot wallet within its
        # band (overflow to the cold wallet, an alert below it) (payments.btc.sweeper).
        Job("btc-sweep", btc[2], btc_sweep),
        # Compare the books with the Bitcoin chain (payments.btc.reconcile).
        Job("btc-reconcile", btc[3], btc_reconcile),
    )
    return (
        Job("identity-cleanup", HOUR, identity_cleanup),
        # Copy the audit head to the ledger database (security.anchors).
        Job("audit-anchor", audit_anchor_seconds, anchor_now),
        # Recompute the ledger's invariants (payments.checks): violations are logged,
        # audited and counted in /api/metrics.
        Job("ledger-check", HOUR, ledger_check),
        # Audit rows staged with ledger actions whose own delivery a crash cut off
        # (security.outbox).
        Job("audit-outbox", AUDIT_OUTBOX_SECONDS, audit_outbox),
        # Cancel withdrawals whose mailed confirmation link expired; mail players whose
        # withdrawals were sent or not paid (users.withdrawal_guard).
        Job("withdrawal-notices", WITHDRAWAL_NOTICES_SECONDS, withdrawal_notices),
        # Verify provider rounds' commit-reveal data and compare each provider game's
        # measured RTP with the declared one (games.providers.honesty).
        Job("provider-checks", provider_checks_seconds, provider_checks),
        # Accrue each ended loyalty period once: volume, rakeback, level-ups and farming
        # flags (games.loyalty.accrual).
        Job("loyalty-accrue", loyalty_seconds, loyalty_accrue),
        # Publish a signed proof of reserves (payments.reserves), using the newest
        # reconciliation of each chain.
        Job("reserves", HOUR, reserves_publish),
    ) + chain + bitcoin + (
        # Display rates from CASINO_RATES_URL (payments.rates); fixed rates need no job.
        (Job("rates-refresh", rates_seconds, rates_refresh),) if rates_seconds else ())


SIGNING_JOBS = frozenset({"eth-batch", "eth-sweep", "btc-batch", "btc-sweep"})


def builtin_jobs(signing: bool = True) -> tuple[Job, ...]:
    """The built-in jobs, with intervals from the settings; ``signing=False`` leaves out
    the jobs that load the hot wallet's keys (SIGNING_JOBS)."""
    st = get_settings()
    jobs = _builtin_jobs(st.audit_anchor_seconds,
                         (st.eth_watch_seconds, st.eth_reconcile_seconds,
                          st.eth_batch_seconds, st.eth_sweep_seconds)
                         if st.eth_rpc_url else None,
                         rates_seconds=st.rates_seconds if st.rates_url else None,
                         btc=(st.btc_watch_seconds, st.btc_batch_seconds,
                              st.btc_sweep_seconds, st.btc_reconcile_seconds)
                         if st.btc_rpc_url else None,
                         provider_checks_seconds=st.provider_checks_seconds,
                         loyalty_seconds=st.loyalty_seconds)
    # the signing jobs use the hot wallet's keys: never in a web process in production
    return jobs if signing else tuple(j for j in jobs if j.name not in SIGNING_JOBS)


def register_builtin_jobs(signing: bool = True) -> list[Job]:
    """Register the built-in jobs (idempotent); returns every registered job."""
    for job in builtin_jobs(signing):
        register(job)
    return registered()
