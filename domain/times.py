"""Business time and recording time (COMMANDS.md § Envelope, `at`: who may give it).

A command's business time (`at`, when it happened) decides its deadlines (appeal windows, the
publicity period, decisions due); its recording time is always the server's clock. Only a batch
import and callers with the `admin` or `recorder` grant name a business time (they enter ledgers
after the fact); for anyone else it is the server's clock (`caller_time`, applied where the caller
is known: the HTTP layer). Nobody names one in the future (`business_time`, for every command).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from domain.errors import DomainError

RULE = "business-time"
# China Standard Time: the office's clock, in which the pages, the Excel ledgers and the demo show
# and read times that carry no offset of their own.
OFFICE_TZ = timezone(timedelta(hours=8))
# COMMANDS.md § Envelope: no caller may give an `at` more than 5 minutes in the future.
FUTURE_TOLERANCE = timedelta(minutes=5)
# COMMANDS.md § Envelope: without the admin or recorder grant, an `at` more than 5 minutes away
# from the server's clock is refused (the business time is the server's clock).
CLOCK_TOLERANCE = timedelta(minutes=5)
# COMMANDS.md § Envelope: a business time earlier than its recording time by more than 7 days is
# marked back-dated (audit trail, explanation).
BACKDATED_AFTER = timedelta(days=7)
# The grants whose holders name business times (COMMANDS.md § Envelope).
NAMES_BUSINESS_TIME = frozenset({"admin", "recorder"})


def business_time(at: datetime | None, recorded: datetime) -> datetime:
    """The business time of a command recorded at `recorded`: the one given, or the recording
    time; one more than FUTURE_TOLERANCE after the recording time is refused (everyone, a batch
    import included)."""
    if at is None:
        return recorded
    if at > recorded + FUTURE_TOLERANCE:
        raise DomainError("at", f"业务时间不得晚于服务器时钟 5 分钟以上 — the business time {at.isoformat()} is "
                          f"more than 5 minutes after the server's clock ({recorded.isoformat()}): nothing "
                          "is recorded in the future", rule=RULE)
    return at


def caller_time(at: datetime | None, now: datetime, grants: frozenset[str] | set[str]) -> datetime | None:
    """The business time a caller holding `grants` may send at `now`: what they gave, with the
    admin or recorder grant; otherwise None (the server's clock), an `at` more than
    CLOCK_TOLERANCE away from `now` refused (no one moves a deadline of their own)."""
    if at is None or grants & NAMES_BUSINESS_TIME:
        return at
    if abs(at - now) > CLOCK_TOLERANCE:
        raise DomainError("at", f"业务时间为服务器时钟,只有批量导入和持 admin 或 recorder 授权者可指定 — "
                          f"the business time is the server's clock ({now.isoformat()}); {at.isoformat()} "
                          "is more than 5 minutes away from it, and only a batch import and callers with "
                          "the admin or recorder grant may name another", rule=RULE)
    return None


def backdated(at: datetime, recorded: datetime) -> bool:
    """Whether a business time is earlier than its recording time by more than BACKDATED_AFTER."""
    return recorded - at > BACKDATED_AFTER
