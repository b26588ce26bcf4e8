"""Entry points of the background jobs: register the built-in jobs (jobs/builtin.py) and
run them with the runner (jobs/runner.py).

* ``run_worker()``: blocking; ``casino worker`` calls it. Stops on SIGTERM/SIGINT,
  letting a run in progress finish (up to a grace period) and releasing its leases.
* ``run_in_app()``: a coroutine for Reflex's ``app.register_lifespan_task``; does
  nothing unless ``CASINO_RUN_JOBS_IN_APP`` is true (the default). Reflex cancels it at
  shutdown; the leases are released then.

They live apart from the runner so that the runner knows no job: ``builtin`` imports
``runner`` (Job, register), this module imports both, and nothing imports back.
"""

from __future__ import annotations

import asyncio
import signal

from casino_app.core.logging import get_logger
from casino_app.core.settings import get_settings
from casino_app.jobs.builtin import SIGNING_JOBS, register_builtin_jobs
from casino_app.jobs.runner import Job, JobRunner, registered

log = get_logger("casino.jobs")


def _prepare(signing: bool = True) -> list[Job]:
    """Register the built-in jobs. ``signing``: also the jobs that sign with the hot
    wallet (the signer then loads and checks the seed here)."""
    if signing and get_settings().eth_rpc_url:
        # The signer runs where the signing jobs run: it checks the hot wallet seed against
        # CASINO_ETH_XPUB (development: creates the seed and writes the xpub file).
        from casino_app.payments.signer.seed import prepare_hot_wallet

        prepare_hot_wallet()
    if signing and get_settings().btc_rpc_url:
        # Bitcoin's keys come from the same seed: CASINO_BTC_XPUB is checked against it
        # (development: the account key is written for the web process).
        from casino_app.payments.signer.btc import prepare_btc_wallet

        prepare_btc_wallet()
    register_builtin_jobs(signing)
    if signing:
        return registered()
    return [j for j in registered() if j.name not in SIGNING_JOBS]


def run_worker() -> None:
    """Run every registered job until SIGTERM or SIGINT (``casino worker``)."""
    runner = JobRunner(_prepare())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        await runner.run()

    asyncio.run(main())


async def run_in_app() -> None:
    """Reflex lifespan task: run the jobs inside the app process when enabled."""
    if not get_settings().run_jobs_in_app:
        log.info("jobs_not_in_app", reason="CASINO_RUN_JOBS_IN_APP is false")
        return
    # In production the web process holds public keys only: the jobs that sign with the
    # hot wallet (eth-batch, eth-sweep, btc-batch) run in `casino worker`. The embedded
    # default is one process and runs them here.
    signing = not get_settings().is_production
    if not signing and (get_settings().eth_rpc_url or get_settings().btc_rpc_url):
        log.info("signing_jobs_not_in_app", reason="production: run `casino worker`")
    # Reflex waits 5 s for a cancelled lifespan task; stay inside that.
    runner = JobRunner(_prepare(signing), stop_grace=3.0)
    await runner.run()

