"""Staff use cases on the house's custody, per chain (Ethereum, Bitcoin): the
reconciliation runs and their issues, the hot and cold wallets against the books and the
hot band (support and admins, read-only), and "reconcile now" (admins; audited as
``staff.reconcile_run``).

Like users/staff.py, each function re-checks the caller's session, role and 2FA on the
server. The views read no personal data and are not audited; the run is. A chain is
named by the caller (``ethereum``, ``bitcoin``); anything else is refused.
"""

from __future__ import annotations

from casino_app.core.db import identity_tx, ledger_tx
from casino_app.core.logging import get_logger
from casino_app.core.settings import ConfigError, get_settings
from casino_app.payments import custody
from casino_app.payments.btc import wallets as btc_wallets
from casino_app.payments.eth import wallets as eth_wallets
from casino_app.payments.reconcile import ReconcileUnavailable
from casino_app.security.audit import AuditAction, record
from casino_app.users.errors import Forbidden, NotFound, ValidationFailed
from casino_app.users.models import Role
from casino_app.users.sessions import RequestContext
from casino_app.users.staff import _actor, require_role

log = get_logger("casino.staff.custody")

RECONCILERS = (Role.admin,)
MAX_PAGE = 100
CHAINS = ("ethereum", "bitcoin")
_NODE_SETTING = {"ethereum": "CASINO_ETH_RPC_URL", "bitcoin": "CASINO_BTC_RPC_URL"}
_NAMES = {"ethereum": "Ethereum", "bitcoin": "Bitcoin"}


def _chain(value: object) -> str:
    if not isinstance(value, str) or value not in CHAINS:
        raise ValidationFailed("No such chain.", "chain")
    return value


def _node_url(chain: str) -> str:
    st = get_settings()
    return st.eth_rpc_url if chain == "ethereum" else st.btc_rpc_url


def configured_chains(token: str | None) -> list[str]:
    """The chains whose node is configured (the staff pages show a section for each;
    Ethereum's always, as it says when it has no node)."""
    _check(token)
    return [c for c in CHAINS if c == "ethereum" or _node_url(c)]


def _run_id(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise NotFound("No such reconciliation run.")
    return value


def _check(token: str | None) -> None:
    with identity_tx() as s:
        require_role(s, token)


def reconcile_runs(token: str | None, before_id: object = None, limit: int = 20,
                   chain: object = "ethereum") -> list[custody.RunView]:
    """A chain's runs newest first; ``before_id`` the oldest run already shown."""
    _check(token)  # the caller first: input is judged for staff only
    name = _chain(chain)
    before = None if before_id is None else _run_id(before_id)
    with ledger_tx(readonly=True) as ls:
        return custody.runs_page(ls, before, min(max(int(limit), 1), MAX_PAGE), name)


def reconcile_issues(token: str | None, run_id: object
                     ) -> tuple[custody.RunView, list[custody.IssueView]]:
    _check(token)
    rid = _run_id(run_id)
    with ledger_tx(readonly=True) as ls:
        run, issues = custody.run_issues(ls, rid)
    if run is None:
        raise NotFound("No such reconciliation run.")
    return run, issues


def wallets(token: str | None, chain: object = "ethereum") -> custody.Overview:
    """A chain's hot and cold wallets read live from its node (short timeout; an
    unreachable node is reported in the result), the books' custody totals and the hot
    band."""
    _check(token)
    name = _chain(chain)
    return eth_wallets.overview() if name == "ethereum" else btc_wallets.overview()


def reconcile_now(token: str | None, ctx: RequestContext,  # noqa: ANN201
                  chain: object = "ethereum"):
    """One reconciliation run of ``chain`` now (admins). Refused, with a message to read,
    when its node is not configured, the watcher stored no block yet (or lags the node too
    far), or the node does not answer. Returns ``payments.reconcile.Result``. The run
    stores its own result (and audits its discrepancies); the request is audited once it
    ran."""
    with identity_tx() as s:
        me = require_role(s, token)
        if me.role not in RECONCILERS:
            raise Forbidden("Only an admin can start a reconciliation.")
    name = _chain(chain)
    if not _node_url(name):
        raise ValidationFailed(f"No {_NAMES[name]} node is configured ({_NODE_SETTING[name]}): "
                               "there is no chain to reconcile against.")
    if name == "ethereum":
        from casino_app.payments.eth.reconcile import run_reconcile_result
    else:
        from casino_app.payments.btc.reconcile import run_reconcile_result  # type: ignore[no-redef]
    try:
        result = run_reconcile_result()
    except ReconcileUnavailable as exc:
        raise ValidationFailed(f"Nothing to reconcile yet: {exc}.") from None
    except ConfigError as exc:
        raise ValidationFailed(f"The configuration is incomplete: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a node error is a message, not a crash
        log.warning("staff_reconcile_failed", error=type(exc).__name__, detail=str(exc)[:200])
        raise ValidationFailed(f"The node did not answer ({type(exc).__name__}); try "
                               "again later.") from None
    with identity_tx() as s:
        me = require_role(s, token)
        record(s, AuditAction.staff_reconcile_run, _actor(me, ctx), None, chain=name,
               run_id=result.run_id, block=result.block, issues=len(result.issues))
    return result
