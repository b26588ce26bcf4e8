"""The platform's own background jobs, registered when a runner starts.

To add a job in a later issue: write the work as a plain function (or ``async def``)
in its layer (``payments/``, ``users/``...), idempotent and resuming from what it stored,
then add one line to ``register_builtin_jobs`` below. The runner gives it a lease, an
interval and a row in ``job_state``; nothing else is needed.
"""

from __future__ import annotations

from casino_app.core.logging import get_logger
from casino_app.jobs.runner import Job, register, registered

log = get_logger("casino.jobs")

HOUR = 3600.0


def identity_cleanup() -> dict[str, int]:
    """Delete expired sessions, challenges, tokens and old login attempts."""
    from casino_app.users.maintenance import purge_expired

    removed = purge_expired()
    # "action_tokens" would be masked by the log redactor (it looks like a secret key).
    log.info("identity_cleanup_done", deleted={k.replace("_tokens", "_links"): v
                                              for k, v in removed.items()})
    return removed


BUILTIN_JOBS: tuple[Job, ...] = (
    Job("identity-cleanup", HOUR, identity_cleanup),
)


def register_builtin_jobs() -> list[Job]:
    """Register the built-in jobs (idempotent); returns every registered job."""
    for job in BUILTIN_JOBS:
        register(job)
    return registered()
