"""Staff pages: player search, a player's account (sessions, lock state, actions), the
audit log. The shell's on_load denies anyone who is not support or admin."""


import reflex as rx

from casino_app.ui import routes, styles
from casino_app.ui.components.forms import card, field, form, form_message, notice, submit
from casino_app.ui.components.tables import table
from casino_app.ui.layout import page_title, staff_page
from casino_app.ui.pages.staff_money import money_section
from casino_app.ui.state.account import SessionRow
from casino_app.ui.state.session import SessionState
from casino_app.ui.state.staff import (
    AuditRow,
    PlayerRow,
    RoleRequestRow,
    StaffAuditState,
    StaffPlayerState,
    StaffRoleRequestsState,
    StaffSearchState,
)
from casino_app.ui.state.staff_money import StaffMoneyState


def _result(p: PlayerRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(p.email, href="/admin/player?id=" + p.user_id.to_string())),
        rx.table.cell(p.display_name),
        rx.table.cell("#", p.user_id),
        rx.table.cell(p.role),
        rx.table.cell(rx.cond(p.locked, rx.badge("Locked", color_scheme="red"),
                              rx.badge("Active", color_scheme="green"))),
    )


def _waiting_role(r: RoleRequestRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(r.email, href=r.player_link)),
        rx.table.cell(r.current_role, " → ", r.role),
        rx.table.cell(r.reason), rx.table.cell(r.requested_by),
        rx.table.cell(rx.cond(r.by_me, "yours: another admin decides", "")))


@staff_page(routes.STAFF, "Staff", on_load=[StaffRoleRequestsState.on_open])
def staff_home() -> rx.Component:
    return rx.vstack(
        page_title("Find a player", "Search by the whole email (any case; emails are "
                   "stored encrypted, so a part finds nothing), account number or player id."),
        form(rx.hstack(
            rx.box(field("Search", "query", required=True, max_length=254,
                         placeholder="email, #id or player id"), flex="1", min_width="220px"),
            rx.box(submit("Search"), width="140px", padding_top="22px"),
            width="100%", align="start", wrap="wrap"),
            on_submit=StaffSearchState.search, reset_on_submit=False, width="100%"),
        form_message(StaffSearchState.message),
        rx.cond(
            StaffSearchState.searched,
            rx.cond(StaffSearchState.results.length() > 0,
                    table(("Email", "Name", "Account", "Role", "State"),
                           StaffSearchState.results, _result),
                    rx.text("No account matches that search.", color=styles.MUTED))),
        rx.hstack(rx.link("Adjustments awaiting approval", href=routes.STAFF_ADJUSTMENTS,
                          underline="always"),
                  rx.link("Withdrawals", href=routes.STAFF_WITHDRAWALS),
                  rx.link("Wallets", href=routes.STAFF_WALLETS),
                  rx.link("Reconciliation", href=routes.STAFF_RECONCILE),
                  rx.link("Game providers", href=routes.STAFF_PROVIDERS),
                  rx.link("Loyalty claims", href=routes.STAFF_LOYALTY),
                  rx.cond(SessionState.is_admin, rx.link("Audit log", href=routes.STAFF_AUDIT)),
                  spacing="4", wrap="wrap"),
        rx.cond(StaffRoleRequestsState.rows.length() > 0, card(rx.vstack(
            rx.heading("Role requests awaiting a second admin", size="4"),
            table(("Account", "Role", "Reason", "Asked by", ""), StaffRoleRequestsState.rows,
                  _waiting_role),
            spacing="3", width="100%"))),
        spacing="4", width="100%",
    )


def _kv(label: str, value: rx.Var | str) -> rx.Component:
    return rx.hstack(rx.text(label, color=styles.MUTED, min_width="130px"),
                     rx.text(value, word_break="break-all"), wrap="wrap")


def _staff_session(row: SessionRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.device), rx.table.cell(row.ip), rx.table.cell(row.last_seen),
        rx.table.cell(rx.button("Revoke", size="1", color_scheme="red", variant="soft",
                                on_click=StaffPlayerState.revoke(row.id))))


def _audit_table(rows: rx.Var) -> rx.Component:
    def line(a: AuditRow) -> rx.Component:
        return rx.table.row(rx.table.cell(a.id), rx.table.cell(a.at),
                            rx.table.cell(rx.code(a.action)), rx.table.cell(a.actor),
                            rx.table.cell(a.target), rx.table.cell(a.ip),
                            rx.table.cell(rx.text(a.detail, size="1", word_break="break-all")))

    return table(("#", "When", "Action", "By", "Account", "IP", "Detail"), rows, line,
                  size="1")


def _reason_form(action: rx.EventHandler, label: str, color: str) -> rx.Component:
    return form(rx.vstack(
        field("Reason", "reason", required=True, max_length=200,
              hint="Written to the audit log."),
        # a red action is soft (red text on a tint, 6:1): white on Radix red is 3.9:1
        submit(label, color_scheme=color, variant="soft" if color == "red" else "solid"),
        spacing="2", width="100%"),
        on_submit=action, reset_on_submit=True, width="100%")


def _role_request(r: RoleRequestRow) -> rx.Component:
    return rx.vstack(
        rx.text("Role request #", r.id, ": make this account ", rx.text.strong(r.role),
                " (now ", r.current_role, ")", size="2"),
        rx.text("Asked by ", r.requested_by, " on ", r.requested_at, ": ", r.reason,
                size="2", color=styles.MUTED),
        rx.cond(
            r.by_me,
            rx.text("You asked: another admin must approve or reject it.", size="2"),
            rx.hstack(
                rx.cond(
                    r.expired,
                    rx.text("Expired unanswered: reject it; it can be asked again.",
                            size="2", color=styles.MUTED),
                    rx.button("Approve", size="1", color_scheme="green", high_contrast=True,
                              on_click=StaffPlayerState.approve_role(r.id),
                              aria_label="Approve role request #" + r.id.to_string())),
                form(rx.hstack(
                    rx.el.input(type="hidden", name="request_id",
                                default_value=r.id.to_string()),
                    rx.input(name="reason", placeholder="Why not", required=True,
                             max_length=200, size="1",
                             aria_label="Reason to reject role request #" + r.id.to_string()),
                    rx.button("Reject", type="submit", size="1", color_scheme="red",
                              variant="soft"), align="center"),
                    on_submit=StaffPlayerState.reject_role, reset_on_submit=True),
                align="center", wrap="wrap")),
        spacing="1", width="100%", align="start", class_name="role-request")


def _role_section(p: rx.Var) -> rx.Component:
    """Admins: change the role (taking one away is immediate; giving support or admin is a
    request that another admin approves here), and the request waiting, if any."""
    return rx.vstack(
        rx.heading("Role", size="4"),
        form(rx.vstack(
            rx.hstack(
                rx.el.label("Role", html_for="role"),
                rx.el.select(rx.el.option("player", value="player"),
                             rx.el.option("support", value="support"),
                             rx.el.option("admin", value="admin"),
                             id="role", name="role", default_value=p.role),
                align="center"),
            field("Reason for the role change", "reason", form_id="role", required=True,
                  max_length=200, hint="Taking a role away is immediate. Giving support or "
                  "admin waits for a second admin's approval."),
            rx.button("Set role", type="submit", variant="soft"),
            spacing="2", width="100%", align="start"),
            on_submit=StaffPlayerState.set_role, reset_on_submit=True),
        rx.foreach(StaffPlayerState.role_requests, _role_request),
        spacing="2", width="100%", align="start")


def _player() -> rx.Component:
    p = StaffPlayerState.player
    return rx.vstack(
        page_title(p.email, "Account #" + p.user_id.to_string()),
        form_message(StaffPlayerState.message),
        notice(StaffPlayerState.notice),
        rx.grid(
            card(rx.vstack(
                rx.heading("Account", size="4"),
                _kv("Display name", p.display_name),
                _kv("Player id", p.player_id),
                _kv("Role", p.role),
                _kv("Created", p.created),
                _kv("Last sign-in", StaffPlayerState.last_login + " " +
                    StaffPlayerState.last_login_ip),
                _kv("Two-factor", rx.cond(StaffPlayerState.totp_enabled, "On", "Off")),
                _kv("State", rx.cond(p.locked, "Locked since " + StaffPlayerState.locked_at +
                                     " — " + StaffPlayerState.lock_reason, "Active")),
                spacing="2", align="start")),
            card(rx.vstack(
                rx.heading(rx.cond(p.locked, "Unlock account", "Lock account"), size="4"),
                rx.cond(p.locked,
                        _reason_form(StaffPlayerState.unlock, "Unlock", "green"),
                        _reason_form(StaffPlayerState.lock, "Lock and sign out", "red")),
                rx.cond(SessionState.is_admin, _role_section(p)),
                spacing="3", width="100%", align="start")),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%"),
        card(rx.vstack(
            rx.hstack(rx.heading("Live sessions", size="4"), rx.spacer(),
                      rx.button("Revoke all", color_scheme="red", variant="outline",
                                on_click=StaffPlayerState.revoke_all), width="100%"),
            rx.cond(StaffPlayerState.sessions.length() > 0,
                    table(("Device", "IP", "Last seen", ""), StaffPlayerState.sessions,
                           _staff_session),
                    rx.text("No live sessions.", color=styles.MUTED)),
            spacing="3", width="100%", align="start")),
        rx.heading("Money", size="5", margin_top="8px"),
        money_section(),
        card(rx.vstack(rx.heading("Recent activity", size="4"),
                       _audit_table(StaffPlayerState.audit), spacing="3", width="100%")),
        spacing="4", width="100%",
    )


@staff_page(routes.STAFF_PLAYER, "Player",
            on_load=[StaffPlayerState.on_open, StaffMoneyState.on_open])
def staff_player() -> rx.Component:
    return rx.vstack(
        rx.link("← Find a player", href=routes.STAFF),
        rx.cond(StaffPlayerState.player, _player(),
                rx.cond(StaffPlayerState.loaded,
                        form_message(StaffPlayerState.message),
                        rx.spinner())),
        spacing="3", width="100%")


@staff_page(routes.STAFF_AUDIT, "Audit log", on_load=[StaffAuditState.on_open])
def staff_audit() -> rx.Component:
    return rx.vstack(
        page_title("Audit log", "Append-only and hash-chained: any edit breaks the chain."),
        rx.hstack(rx.button("Verify the chain", on_click=StaffAuditState.verify),
                  rx.text(StaffAuditState.verify_result, weight="medium"), align="center",
                  wrap="wrap"),
        _audit_table(StaffAuditState.rows),
        rx.cond(StaffAuditState.more,
                rx.button("Older entries", variant="soft", on_click=StaffAuditState.load_older)),
        spacing="4", width="100%")
