"""Input rules for accounts. Every function returns the clean value or raises
ValidationFailed naming the field, so forms and the API give the same messages."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from email_validator import EmailNotValidError, validate_email

from casino_app.users.errors import ValidationFailed

PASSWORD_MIN = 8
PASSWORD_MAX = 128
EMAIL_MAX = 254
NAME_MIN, NAME_MAX = 2, 40
_NAME_OK = re.compile(r"^[\w .'\-]+$", re.UNICODE)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("data") / "common-passwords.txt"
    return frozenset(
        line.strip() for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#"))


def _text(value: object, field: str, label: str) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{label} must be text.", field)
    return unicodedata.normalize("NFC", value)


def email(value: object) -> str:
    raw = _text(value, "email", "Email").strip()
    if not raw:
        raise ValidationFailed("Enter your email address.", "email")
    if len(raw) > EMAIL_MAX:
        raise ValidationFailed("That email address is too long.", "email")
    try:
        info = validate_email(raw, check_deliverability=False)
    except EmailNotValidError:
        raise ValidationFailed("Enter a valid email address, like name@example.com.",
                               "email") from None
    return info.normalized.lower()


def password(value: object, *, email_addr: str = "", field: str = "password") -> str:
    pw = _text(value, field, "Password")
    if len(pw) < PASSWORD_MIN:
        raise ValidationFailed(f"Use at least {PASSWORD_MIN} characters.", field)
    if len(pw) > PASSWORD_MAX:
        raise ValidationFailed(f"Use at most {PASSWORD_MAX} characters.", field)
    if any(unicodedata.category(c) == "Cc" for c in pw):
        raise ValidationFailed("Passwords cannot contain control characters.", field)
    if pw.lower() in common_passwords():
        raise ValidationFailed("That password is too common; choose something less "
                               "guessable (a few random words work well).", field)
    if email_addr and pw.lower() in {email_addr.lower(), email_addr.split("@")[0].lower()}:
        raise ValidationFailed("Do not use your email address as a password.", field)
    return pw


def display_name(value: object) -> str:
    name = " ".join(_text(value, "display_name", "Display name").split())
    if len(name) < NAME_MIN:
        raise ValidationFailed(f"Use at least {NAME_MIN} characters.", "display_name")
    if len(name) > NAME_MAX:
        raise ValidationFailed(f"Use at most {NAME_MAX} characters.", "display_name")
    if not _NAME_OK.match(name):
        raise ValidationFailed("Use letters, digits, spaces and . ' - _ only.", "display_name")
    return name


def date_of_birth(value: object, *, today: date, minimum_age: int) -> date:
    if isinstance(value, datetime):  # a datetime is a date too, but does not compare
        dob = value.date()
    elif isinstance(value, date):
        dob = value
    else:
        raw = _text(value, "date_of_birth", "Date of birth").strip()
        if not raw:
            raise ValidationFailed("Enter your date of birth.", "date_of_birth")
        try:
            dob = date.fromisoformat(raw)
        except ValueError:
            raise ValidationFailed("Enter a date as YYYY-MM-DD.", "date_of_birth") from None
    if dob > today:
        raise ValidationFailed("Date of birth cannot be in the future.", "date_of_birth")
    if dob.year < today.year - 120:
        raise ValidationFailed("Enter a real date of birth.", "date_of_birth")
    age = today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))
    if age < minimum_age:
        raise ValidationFailed(f"You must be {minimum_age} or older to play.", "date_of_birth")
    return dob


def code(value: object, field: str = "code") -> str:
    """A 6-digit TOTP code or a recovery code (letters/digits, dashes and spaces ignored)."""
    raw = _text(value, field, "Code")
    clean = re.sub(r"[\s\-]", "", raw).upper()
    if not clean:
        raise ValidationFailed("Enter the code.", field)
    if len(clean) > 32 or not clean.isascii() or not clean.isalnum():
        raise ValidationFailed("Enter the 6-digit code from your app, or a recovery code.",
                               field)
    return clean


ROW_ID_MAX = 2**31 - 1  # ids are INTEGER columns (int4 on PostgreSQL)


def row_id(value: object, field: str, message: str) -> int:
    """A row id from the browser: a real int (not a bool) that fits the column."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= ROW_ID_MAX:
        raise ValidationFailed(message, field)
    return value


def account_number(text: str) -> int | None:
    """``42`` or ``#42`` (ASCII digits only) as an id that fits the column, else None."""
    number = text.removeprefix("#")
    if not (number.isascii() and number.isdigit()) or len(number) > 10:
        return None
    value = int(number)
    return value if 0 < value <= ROW_ID_MAX else None


def token(value: object) -> str:
    if not isinstance(value, str) or not (20 <= len(value) <= 128) or \
            not re.fullmatch(r"[A-Za-z0-9_\-]+", value):
        raise ValidationFailed("This link is invalid or has expired.", "token")
    return value
