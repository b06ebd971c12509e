"""Who is calling: bearer tokens, their grants, and the checks of the roles.

A token is `al_` + 32 random bytes (url-safe base64). Only its SHA-256 hash is stored, with a
short public id (`tk-…`), the first characters of the token (to recognise it in a list), the
person it speaks for, its grants, and who created it when; a revoked token keeps its row with who
revoked it when (nothing is ever deleted: the table is the audit trail of access). The table
lives in the ledger's own store (`<…>_tokens` beside the events and commands tables, on SQLite
and PostgreSQL; in the process for `memory://`).

Roles: `admin`, `recorder` and `inspector` are grants on a token; every authenticated person is
also a rater (the domain decides in which roles, SCORING.md §5) and a member of staff (their own
breakdown and appeals). An inspector reads everything and writes nothing, so a token never holds
`inspector` together with a grant that writes.

A page session is a token of its own (its note `SESSION_NOTE`, created by the token signed in
with, the same person and grants), kept in the session cookie: signing out revokes it, and it stops
working when the token it was opened with is revoked. The API's token is never in a cookie.

`Throttle` counts failed sign-ins and bad tokens per client address, in this process's memory.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from psycopg.sql import SQL, Composed, Identifier

from api.http.problems import Problem
from api.ledger import AppraisalLedger
from api.store.storage import serialize_ddl

TOKEN_PREFIX = "al_"
GRANTS = ("admin", "recorder", "inspector")
SHOWN_PREFIX = 10  # characters of a token kept to recognise it in `token list` (al_ + 7)
SESSION_NOTE = "page session 页面会话"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a person and the grants of their token."""

    person: str
    grants: frozenset[str] = field(default_factory=frozenset)
    token_id: str = ""
    session: bool = False  # a page session's token (never handed to anyone but a cookie)

    @property
    def is_inspector(self) -> bool:
        return "inspector" in self.grants

    @property
    def sees_everything(self) -> bool:
        return bool(self.grants & {"admin", "inspector"})

    @property
    def roles(self) -> list[str]:
        base = [] if self.is_inspector else ["rater", "staff"]
        return sorted(self.grants) + base


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    prefix: str
    person: str
    grants: tuple[str, ...]
    created_at: str
    created_by: str
    note: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def session(self) -> bool:
        return self.note == SESSION_NOTE and self.created_by.startswith("tk-")

    def principal(self) -> Principal:
        return Principal(self.person, frozenset(self.grants), self.token_id, self.session)


COLUMNS = ("token_id", "token_hash", "prefix", "person", "grants", "created_at", "created_by", "note",
           "revoked_at", "revoked_by")


def _record(row: Any) -> TokenRecord:
    grants = tuple(g for g in str(row["grants"]).split(",") if g)
    return TokenRecord(row["token_id"], row["prefix"], row["person"], grants, row["created_at"],
                       row["created_by"], row["note"], row["revoked_at"], row["revoked_by"])


class TokenTable(Protocol):
    def insert(self, record: TokenRecord, token_hash: str) -> None: ...
    def by_hash(self, token_hash: str) -> TokenRecord | None: ...
    def by_id(self, token_id: str) -> TokenRecord | None: ...
    def all(self) -> list[TokenRecord]: ...
    def revoke(self, token_id: str, by: str, at: str) -> None: ...


class SQLiteTokens:
    def __init__(self, ledger: AppraisalLedger) -> None:
        recorder: Any = ledger.recorder
        self.datastore = recorder.datastore
        self.table = recorder.commands_table.replace("commands", "tokens")
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (token_id TEXT PRIMARY KEY, "
                      "token_hash TEXT NOT NULL UNIQUE, prefix TEXT NOT NULL, person TEXT NOT NULL, "
                      "grants TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT NOT NULL, note TEXT, "
                      "revoked_at TEXT, revoked_by TEXT)")

    def insert(self, record: TokenRecord, token_hash: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"INSERT INTO {self.table} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                      _params(record, token_hash))

    def by_hash(self, token_hash: str) -> TokenRecord | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {self.table} WHERE token_hash = ?", (token_hash,))
            row = c.fetchone()
        return _record(row) if row else None

    def by_id(self, token_id: str) -> TokenRecord | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {self.table} WHERE token_id = ?", (token_id,))
            row = c.fetchone()
        return _record(row) if row else None

    def all(self) -> list[TokenRecord]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {self.table} ORDER BY created_at, token_id")
            return [_record(row) for row in c.fetchall()]

    def revoke(self, token_id: str, by: str, at: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"UPDATE {self.table} SET revoked_at = ?, revoked_by = ? "
                      "WHERE token_id = ? AND revoked_at IS NULL", (at, by, token_id))


class PostgresTokens:
    def __init__(self, ledger: AppraisalLedger) -> None:
        recorder: Any = ledger.recorder
        self.datastore = recorder.datastore
        table = recorder.commands_table.replace("_commands", "_tokens")
        self.table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(table))
        with self.datastore.transaction(commit=True) as c:
            serialize_ddl(c, self.datastore.schema)
            c.execute(SQL("CREATE TABLE IF NOT EXISTS {} (token_id text PRIMARY KEY, "
                          "token_hash text NOT NULL UNIQUE, prefix text NOT NULL, person text NOT NULL, "
                          "grants text NOT NULL, created_at text NOT NULL, created_by text NOT NULL, "
                          "note text, revoked_at text, revoked_by text)").format(self.table))
        self.by_hash_statement = SQL("SELECT * FROM {} WHERE token_hash = %s").format(self.table)
        self.by_id_statement = SQL("SELECT * FROM {} WHERE token_id = %s").format(self.table)

    def insert(self, record: TokenRecord, token_hash: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(SQL("INSERT INTO {} ({}) VALUES ({})").format(
                self.table, SQL(", ").join(map(Identifier, COLUMNS)), SQL(", ").join(SQL("%s") for _ in COLUMNS)),
                _params(record, token_hash))

    def _select(self, statement: Composed, params: tuple[Any, ...] = ()) -> list[Any]:
        """One statement on one of the pool's connections (in autocommit mode): one round trip,
        where a transaction around it took three (BEGIN, the statement, ROLLBACK). Every request
        whose token is not in the cache of the last seconds reads this way."""
        with self.datastore.get_connection() as conn, conn.cursor() as c:
            c.execute(statement, params, prepare=True)
            return c.fetchall()

    def by_hash(self, token_hash: str) -> TokenRecord | None:
        rows = self._select(self.by_hash_statement, (token_hash,))
        return _record(rows[0]) if rows else None

    def by_id(self, token_id: str) -> TokenRecord | None:
        rows = self._select(self.by_id_statement, (token_id,))
        return _record(rows[0]) if rows else None

    def all(self) -> list[TokenRecord]:
        return [_record(row) for row in self._select(SQL("SELECT * FROM {} ORDER BY created_at, token_id").format(self.table))]

    def revoke(self, token_id: str, by: str, at: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(SQL("UPDATE {} SET revoked_at = %s, revoked_by = %s "
                          "WHERE token_id = %s AND revoked_at IS NULL").format(self.table), (at, by, token_id))


class MemoryTokens:
    """For `memory://` stores (tests): the table lives as long as the ledger object."""

    def __init__(self, ledger: AppraisalLedger) -> None:
        recorder: Any = ledger.recorder
        if not hasattr(recorder, "tokens_table"):
            recorder.tokens_table = {}
        self.rows: dict[str, dict[str, Any]] = recorder.tokens_table
        self.lock = threading.Lock()

    def insert(self, record: TokenRecord, token_hash: str) -> None:
        with self.lock:
            if any(row["token_hash"] == token_hash for row in self.rows.values()):
                raise ValueError("token hash already stored")
            self.rows[record.token_id] = dict(zip(COLUMNS, _params(record, token_hash), strict=True))

    def by_hash(self, token_hash: str) -> TokenRecord | None:
        with self.lock:
            row = next((row for row in self.rows.values() if row["token_hash"] == token_hash), None)
        return _record(row) if row else None

    def by_id(self, token_id: str) -> TokenRecord | None:
        with self.lock:
            row = self.rows.get(token_id)
        return _record(row) if row else None

    def all(self) -> list[TokenRecord]:
        with self.lock:
            return [_record(row) for row in sorted(self.rows.values(),
                                                   key=lambda r: (r["created_at"], r["token_id"]))]

    def revoke(self, token_id: str, by: str, at: str) -> None:
        with self.lock:
            row = self.rows[token_id]
            if row["revoked_at"] is None:
                row.update(revoked_at=at, revoked_by=by)


def _params(record: TokenRecord, token_hash: str) -> tuple[Any, ...]:
    return (record.token_id, token_hash, record.prefix, record.person, ",".join(record.grants),
            record.created_at, record.created_by, record.note, record.revoked_at, record.revoked_by)


def token_table(ledger: AppraisalLedger) -> TokenTable:
    module = type(ledger.recorder).__module__
    name = type(ledger.recorder).__name__
    if "Postgres" in name or "postgres" in module:
        return PostgresTokens(ledger)
    if "SQLite" in name or "sqlite" in module:
        return SQLiteTokens(ledger)
    return MemoryTokens(ledger)


class TokenError(ValueError):
    pass


class Credentials:
    """Create, list, revoke and verify bearer tokens."""

    def __init__(self, ledger: AppraisalLedger, *, cache_seconds: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.table = token_table(ledger)
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[Principal, float]] = {}  # by token hash, never by token
        self._lock = threading.Lock()

    def create(self, person: str, grants: list[str] | tuple[str, ...] = (), *, created_by: str,
               note: str | None = None, require_person: bool | None = None) -> tuple[str, TokenRecord]:
        """A new token for `person` (returned once, never stored) and its record. A token without
        grants must speak for a person of the organisation (a rater, a member of staff); one with
        grants may speak for an office (`hr-office`), as batch imports do (COMMANDS.md)."""
        unknown = sorted(set(grants) - set(GRANTS))
        if unknown:
            raise TokenError(f"unknown grant(s) {', '.join(unknown)} (grants: {', '.join(GRANTS)})")
        if "inspector" in grants and set(grants) & {"admin", "recorder"}:
            raise TokenError("an inspector writes nothing: give inspector alone, or admin/recorder "
                             "on another token")
        if not person.strip():
            raise TokenError("a token speaks for a person: --person is empty")
        if require_person is None:
            require_person = not grants
        if require_person and person not in self.people():
            raise TokenError(f"no person {person} in the organisation (record them first with "
                             "org.person, or give a grant to a token for an office)")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = TokenRecord(token_id="tk-" + secrets.token_hex(5), prefix=token[:SHOWN_PREFIX],
                             person=person, grants=tuple(sorted(set(grants))),
                             created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                             created_by=created_by, note=note)
        self.table.insert(record, hash_token(token))
        return token, record

    def people(self) -> set[str]:
        organisation = self.ledger.organisation()
        return set(organisation.people) if organisation is not None else set()

    def list(self) -> list[TokenRecord]:
        return self.table.all()

    def find(self, key: str) -> TokenRecord:
        """A token by itself, its id (`tk-…`) or a prefix of it (at least its first 7 characters)."""
        key = key.strip()
        if key.startswith(TOKEN_PREFIX) and len(key) > SHOWN_PREFIX:
            record = self.table.by_hash(hash_token(key))
            if record is None:
                raise TokenError("no such token")
            return record
        records = self.table.all()
        matches = [r for r in records if r.token_id == key]
        if not matches and len(key) >= 7:
            matches = [r for r in records if r.prefix.startswith(key) or key.startswith(r.prefix)]
        if not matches:
            raise TokenError(f"no token with id or prefix {key!r}")
        if len(matches) > 1:
            raise TokenError(f"{key!r} matches {len(matches)} tokens ({', '.join(r.token_id for r in matches)}): "
                             "give the token id")
        return matches[0]

    def revoke(self, key: str, *, by: str) -> TokenRecord:
        record = self.find(key)
        if record.revoked_at is None:
            self.table.revoke(record.token_id, by, datetime.now(UTC).isoformat(timespec="seconds"))
        with self._lock:
            self._cache.clear()
        return self.find(record.token_id)

    def cached(self, token: str) -> Principal | None:
        """The caller of a token verified within the last `cache_seconds`, without the store."""
        return self._fresh(hash_token(token), self.clock()) if _well_formed(token) else None

    def _fresh(self, digest: str, now: float) -> Principal | None:
        with self._lock:
            cached = self._cache.get(digest)
        return cached[0] if cached is not None and cached[1] > now else None

    def verify(self, token: str) -> Principal:
        """The caller a token speaks for; raises a 401 Problem saying why it does not."""
        if not _well_formed(token):
            raise unauthenticated("token-malformed", "not a token of this service (they start with "
                                  f"{TOKEN_PREFIX!r}; create one with `appraisal token create`)")
        digest = hash_token(token)
        now = self.clock()
        principal = self._fresh(digest, now)
        if principal is not None:
            return principal
        record = self.table.by_hash(digest)
        if record is None:
            raise unauthenticated("token-unknown", "this token is not known (never created, or for "
                                  "another store)")
        if not record.active:
            raise unauthenticated("token-revoked", f"token {record.token_id} was revoked on "
                                  f"{record.revoked_at} by {record.revoked_by}")
        if record.session:
            opened_with = self.table.by_id(record.created_by)
            if opened_with is None or not opened_with.active:
                raise unauthenticated("token-revoked", f"this session was opened with token {record.created_by}, "
                                      "since revoked")
        principal = record.principal()
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (principal, now + self.cache_seconds)
        return principal


    def open_session(self, principal: Principal) -> str:
        """A page session for the caller of a token just verified: a token of its own for the
        cookie, recorded in the table (who signed in when)."""
        token, _ = self.create(principal.person, tuple(principal.grants), created_by=principal.token_id,
                               note=SESSION_NOTE, require_person=False)
        return token

    def end_session(self, token: str, *, by: str) -> None:
        """Sign-out: the session's token is revoked (a token that is not a session's is left alone)."""
        if not _well_formed(token):
            return
        record = self.table.by_hash(hash_token(token))
        if record is not None and record.session and record.active:
            self.revoke(record.token_id, by=by)


class Throttle:
    """Failed sign-ins and bad tokens, per client address: `limit` failures within `window`
    seconds and the address is refused (429, Retry-After) until the oldest leaves the window.
    Kept in this process's memory, for at most `addresses` addresses (the stalest forgotten
    first); several server processes each count their own."""

    def __init__(self, limit: int, window: float, *, addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window, self.addresses, self.clock = limit, window, addresses, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """Raises the 429 Problem while `address` has had `limit` failures within the window."""
        if len(self._failures.get(address, ())) < self.limit:  # most callers: no lock taken
            return
        now = self.clock()
        with self._lock:
            failures = self._failures.get(address)
            if failures is None:
                return
            self._expire(failures, now)
            if len(failures) < self.limit:
                return
            wait = max(1, math.ceil(failures[0] + self.window - now))
        raise Problem(429, "too-many-failures", f"{self.limit} failed sign-ins or bad tokens from this address "
                      f"within {self.window:g} s: try again in {wait} s 失败次数过多,请稍后再试",
                      field="authorization", headers={"Retry-After": str(wait)})

    def failed(self, address: str) -> None:
        now = self.clock()
        with self._lock:
            failures = self._failures.pop(address, None) or deque(maxlen=self.limit)
            self._expire(failures, now)
            failures.append(now)
            self._failures[address] = failures  # the most recent last: the stalest are first
            while len(self._failures) > self.addresses:
                del self._failures[next(iter(self._failures))]

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()


def _well_formed(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX) and 20 <= len(token) <= 200


def unauthenticated(rule: str, detail: str) -> Problem:
    error = "invalid_request" if rule == "token-missing" else "invalid_token"
    challenge = f'Bearer realm="appraisal-ledger", error="{error}"'
    return Problem(401, rule, detail, field="authorization", headers={"WWW-Authenticate": challenge})


def forbidden(rule: str, detail: str, field: str = "authorization") -> Problem:
    return Problem(403, rule, detail, field=field)


def require_grant(principal: Principal, grant: str, action: str) -> None:
    if grant not in principal.grants:
        held = ", ".join(sorted(principal.grants)) or "no grants"
        raise forbidden("role-required", f"{action} needs the {grant} grant; the token of "
                        f"{principal.person} has {held}")


def require_writer(principal: Principal, action: str) -> None:
    if principal.is_inspector:
        raise forbidden("inspector-read-only", f"{action}: an inspector's token reads everything and "
                        "writes nothing")


def require_reader(principal: Principal, action: str) -> None:
    """admin or inspector: the reads that show everything."""
    if not principal.sees_everything:
        raise forbidden("role-required", f"{action} needs the admin or inspector grant")

