"""Named domain errors raised by the users services; the UI turns them into messages."""

from __future__ import annotations


class UserError(Exception):
    """Base: ``str(exc)`` is safe to show to the person who caused it."""


class ValidationFailed(UserError):
    """Bad input. ``field`` names the form field, when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class InvalidCredentials(UserError):
    def __init__(self) -> None:
        super().__init__(
            "Email or password is incorrect. After 5 failed attempts an account is locked "
            "for safety and its owner is emailed an unlock link.")


class AccountLocked(UserError):
    def __init__(self) -> None:
        super().__init__("This account is locked. Use the unlock link we emailed you, "
                         "reset your password, or contact support.")


class InvalidCode(UserError):
    def __init__(self, message: str = "That code is not valid. Codes can be used only once."):
        super().__init__(message)


class InvalidToken(UserError):
    def __init__(self, message: str = "This link is invalid or has expired. "
                 "Please request a new one."):
        super().__init__(message)


class NotAuthenticated(UserError):
    def __init__(self) -> None:
        super().__init__("Please sign in.")


class Forbidden(UserError):
    def __init__(self, message: str = "You do not have permission to do that.") -> None:
        super().__init__(message)


class StaffNeeds2FA(Forbidden):
    def __init__(self) -> None:
        super().__init__("Staff accounts must turn on two-factor authentication before "
                         "using the staff pages.")


class PlayersOnly(Forbidden):
    """Support staff asked for a staff account: only admins see or act on those."""

    def __init__(self) -> None:
        super().__init__("Support staff can open player accounts only; staff accounts "
                         "are for admins.")


class NotFound(UserError):
    pass
