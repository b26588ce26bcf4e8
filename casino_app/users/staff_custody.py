"""Staff use cases on the house's Ethereum custody: the reconciliation runs and their
issues, the hot and cold wallets against the books and the hot band (support and admins,
read-only), and "reconcile now" (admins; audited as ``staff.reconcile_run``).

Like users/staff.py, each function re-checks the caller's session, role and 2FA on the
server. The views read no personal data and are not audited; the run is.
"""

from __future__ import annotations

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments import custody
from casino_app.payments.eth import wallets as eth_wallets
from casino_app.security.audit import AuditAction, record
from casino_app.users.errors import Forbidden, NotFound, ValidationFailed
from casino_app.users.models import Role
from casino_app.users.sessions import RequestContext
from casino_app.users.staff import _actor, require_role

log = get_logger("casino.staff.custody")

RECONCILERS = (Role.admin,)
MAX_PAGE = 100


def _run_id(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise NotFound("No such reconciliation run.")
    return value


def _check(token: str | None) -> None:
    with identity_tx() as s:
        require_role(s, token)


def reconcile_runs(token: str | None, before_id: object = None, limit: int = 20
                   ) -> list[custody.RunView]:
    """Runs newest first; ``before_id`` the oldest run already shown."""
    _check(token)  # the caller first: input is judged for staff only
    before = None if before_id is None else _run_id(before_id)
    with ledger_tx(readonly=True) as ls:
        return custody.runs_page(ls, before, min(max(int(limit), 1), MAX_PAGE))


def reconcile_issues(token: str | None, run_id: object
                     ) -> tuple[custody.RunView, list[custody.IssueView]]:
    _check(token)
    rid = _run_id(run_id)
    with ledger_tx(readonly=True) as ls:
        run, issues = custody.run_issues(ls, rid)
    if run is None:
        raise NotFound("No such reconciliation run.")
    return run, issues


def wallets(token: str | None) -> custody.Overview:
    """Hot wallet and Safe balances read live from the node (short timeout; an unreachable
    node is reported in the result), the books' custody totals and the hot band."""
    _check(token)
    return eth_wallets.overview()


def reconcile_now(token: str | None, ctx: RequestContext):  # noqa: ANN201
    """One reconciliation run now (admins). Refused, with a message to read, when no node
    is configured, the watcher stored no block yet, or the node does not answer. Returns
    ``reconcile.Result``. The run stores its own result (and audits its discrepancies);
    the request is audited once it ran."""
    from casino_app.payments.eth.reconcile import ReconcileUnavailable, run_reconcile_result

    with identity_tx() as s:
        me = require_role(s, token)
        if me.role not in RECONCILERS:
            raise Forbidden("Only an admin can start a reconciliation.")
    if not get_settings().eth_rpc_url:
        raise ValidationFailed("No Ethereum node is configured (CASINO_ETH_RPC_URL): there "
                               "is no chain to reconcile against.")
    try:
        result = run_reconcile_result()
    except ReconcileUnavailable:
        raise ValidationFailed("Nothing to reconcile yet: the deposit watcher has not "
                               "stored a block.") from None
    except ConfigError as exc:
        raise ValidationFailed(f"The configuration is incomplete: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a node error is a message, not a crash
        log.warning("staff_reconcile_failed", error=type(exc).__name__, detail=str(exc)[:200])
        raise ValidationFailed(f"The node did not answer ({type(exc).__name__}); try "
                               "again later.") from None
    with identity_tx() as s:
        me = require_role(s, token)
        record(s, AuditAction.staff_reconcile_run, _actor(me, ctx), None,
               run_id=result.run_id, block=result.block, issues=len(result.issues))
    return result
