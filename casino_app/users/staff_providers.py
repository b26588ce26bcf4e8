"""Staff use cases on game providers (/admin/providers): the providers, declared against
measured RTP per game, the providers' alerts, and the recall of any provider round
(support and admins); disabling or enabling a provider (admins, audited as
``staff.provider_disabled`` / ``staff.provider_enabled`` with a reason).

Like users/staff.py, each function re-checks the caller's session, role and 2FA on the
server. The provider, RTP and alert views name no player and are not audited; a round
is a player's money, so searching rounds (``staff.provider_round_search``) and opening
one (``staff.provider_round_view``, naming the player's account) are, and support opens
rounds of player accounts only (``PlayersOnly``), as with the money page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from casino_app.core.db import identity_tx
from casino_app.games.providers import alerts, honesty, recall, registry
from casino_app.security.audit import AuditAction, record
from casino_app.users.errors import Forbidden, NotFound, ValidationFailed
from casino_app.users.models import Role, User
from casino_app.users.sessions import RequestContext
from casino_app.users.staff import _actor, _reason, reachable, require_role

TOGGLERS = (Role.admin,)
ALERTS_SHOWN = 100


@dataclass(frozen=True)
class Overview:
    providers: list[recall.ProviderView]
    games: list[honesty.GameRtp]
    alerts: list[alerts.AlertView]


@dataclass(frozen=True)
class StaffRound:
    detail: recall.RoundDetail
    user_id: int | None      # the player's account (None: no account has this player id)


def _check(token: str | None) -> None:
    with identity_tx() as s:
        require_role(s, token)


def overview(token: str | None) -> Overview:
    """Providers, RTP per game and the latest alerts (read-only, no personal data)."""
    _check(token)
    return Overview(recall.providers(), honesty.rtp_report(), alerts.recent(ALERTS_SHOWN))


def _provider_name(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 32:
        raise ValidationFailed("Choose a provider.", "provider")
    return value


def set_enabled(token: str | None, name: object, enabled: object, reason: object,
                ctx: RequestContext) -> recall.ProviderView:
    """An admin disables a provider (every call it makes is refused within seconds) or
    enables it again, saying why. One admin's call: it moves no money and gives nobody a
    role. The audit row is written before the ledger commits (a failed audit write
    changes nothing); the identity database commits just after."""
    with identity_tx() as s:
        me = require_role(s, token)
        if me.role not in TOGGLERS:
            raise Forbidden("Only an admin can disable or enable a provider.")
        if not isinstance(enabled, bool):
            raise ValidationFailed("Say whether to enable or disable it.", "enabled")
        provider = _provider_name(name)
        why = _reason(reason)
        was = {p.name: p.enabled for p in recall.providers()}
        if provider not in was:
            raise NotFound("No such provider.")
        record(s, AuditAction.provider_enabled if enabled else AuditAction.provider_disabled,
               _actor(me, ctx), None, provider=provider, reason=why,
               was="enabled" if was[provider] else "disabled")
        try:
            registry.set_enabled(provider, enabled)
        except registry.ProviderError:
            raise NotFound("No such provider.") from None
    return next(p for p in recall.providers() if p.name == provider)


def _query(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed("Enter our round number or the provider's round id.", "round")
    if len(value.strip()) > 128:
        raise ValidationFailed("That round id is too long.", "round")
    return value.strip()


def find_rounds(token: str | None, query: object, ctx: RequestContext
                ) -> list[recall.RoundSummary]:
    """Rounds by our number or the provider's round id (the search is audited)."""
    with identity_tx() as s:
        me = require_role(s, token)
        q = _query(query)
        found = recall.find_rounds(q)
        record(s, AuditAction.provider_round_search, _actor(me, ctx), None, query=q[:100],
               results=len(found))
    return found


def round_detail(token: str | None, round_id: object, ctx: RequestContext) -> StaffRound:
    """One round with its calls, receipts (raw bodies, signatures, our answers), amounts,
    fairness check and the provider's recall URL. The view is audited against the
    player's account; support may open rounds of player accounts only (PlayersOnly)."""
    _check(token)  # the caller first: input is judged for staff only
    try:
        detail = recall.round_detail(round_id, raw=True, provider_link=False)
    except recall.RoundNotFound:
        raise NotFound("No such round.") from None
    with identity_tx() as s:
        me = require_role(s, token)
        user = s.execute(select(User).where(User.player_id == detail.round.player_id)
                         ).scalar_one_or_none()
        if user is not None:
            reachable(me, user)
        record(s, AuditAction.provider_round_view, _actor(me, ctx),
               user.id if user is not None else None, round_id=detail.round.id,
               provider=detail.round.provider)
        user_id = user.id if user is not None else None
    # the provider's page is asked for once the view is allowed and recorded
    return StaffRound(recall.provider_recall(detail), user_id)
