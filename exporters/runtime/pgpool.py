"""The lazy, read-only asyncpg pool every database-reading exporter uses.

Created on first use (an exporter starts while its database is down), read-only sessions
with server-side limits, so even a query whose client gave up cannot hold locks or a
transaction open. A pool that failed to open is dropped and re-created on the next round.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

_AUTH_ERRORS = (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
_CONNECTION_ERRORS = (
    # The server answered but the DSN's database is not there: the target is not reached,
    # so it is down (reason connection), not a query failing in a database that is up.
    asyncpg.InvalidCatalogNameError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    ConnectionError,
    OSError,
)


class SessionChangedError(Exception):
    """A statement changed settings of its session; the connection was closed."""


def classify_pg_error(exc: BaseException) -> str | None:
    """The bounded error reason of an asyncpg failure, None when it is not one."""
    if isinstance(exc, SessionChangedError):
        return "query"
    if isinstance(exc, _AUTH_ERRORS):
        return "auth"
    if isinstance(exc, asyncpg.QueryCanceledError | TimeoutError):
        return "timeout"
    if isinstance(exc, _CONNECTION_ERRORS):
        return "connection"
    if isinstance(exc, asyncpg.PostgresError):
        return "query"
    return None


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool `reset` for connections whose statements leave no session state.

    asyncpg's default reset sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL` (four statements) on every release. An exporter that only runs read-only
    SELECTs takes no advisory lock, declares no cursor (asyncpg's portals end with their
    statement), listens to nothing and sets nothing after connecting (its settings are
    startup parameters, which RESET ALL would keep anyway), so there is nothing to reset.
    A transaction left open by a cancelled run is still rolled back: asyncpg does that
    itself before calling a custom reset.
    """


# Settings PostgreSQL reports to the client (ParameterStatus) whenever a statement changes
# them, before the statement's ReadyForQuery: watching them costs no round trip.
# default_transaction_read_only is reported since PostgreSQL 14; role changes show in
# is_superuser and session_authorization. The others are set at connect (startup
# parameters), so a configuration reload on the server cannot change them either: only a
# statement can. (Reported settings a reload can change, like DateStyle, are left out.)
REPORTED = ("default_transaction_read_only", "TimeZone", "application_name", "client_encoding",
            "is_superuser", "session_authorization")


def _reported(conn: asyncpg.Connection) -> dict[str, str | None]:
    settings = conn.get_settings()
    return {name: getattr(settings, name, None) for name in REPORTED}


def reports_read_only(conn: asyncpg.Connection) -> bool:
    """The server reports this session as read-only by default (PostgreSQL 14 and later).

    Then a single statement outside BEGIN runs in an implicit read-only transaction (its
    read-write mode cannot be switched on once the statement has its snapshot), and a
    statement that turned the session default off would be seen by `SessionGuard`.
    """
    return getattr(conn.get_settings(), "default_transaction_read_only", None) == "on"


class SessionGuard:
    """Pool `init` and `reset` for statements that are not ours (a query pack's SQL).

    A statement can change its session for the statements after it, e.g.
    `SELECT set_config('default_transaction_read_only', 'off', false)`: a later query
    outside BEGIN READ ONLY could then write. The settings the server reports are compared
    on release with those the connection started with; on any change the release fails,
    which makes asyncpg terminate the connection (the run fails, the next one reconnects)
    before it runs anything else. Otherwise nothing is sent: `keep_session`'s reasoning
    holds for statements that changed nothing.
    """

    def __init__(self) -> None:
        self._started: weakref.WeakKeyDictionary[asyncpg.Connection, dict[str, str | None]] = (
            weakref.WeakKeyDictionary())

    async def init(self, conn: asyncpg.Connection) -> None:
        self._started[conn] = _reported(conn)

    async def reset(self, conn: asyncpg.Connection) -> None:
        started = self._started.get(conn)
        now = _reported(conn)
        if started is None or now != started:
            changed = sorted(k for k in REPORTED if started is None or now[k] != started[k])
            raise SessionChangedError(
                f"the statement changed its session ({', '.join(changed)}); connection closed")


class ReadOnlyPool:
    def __init__(self, dsn: str, *, application_name: str, max_size: int,
                 statement_timeout: float, connect_timeout: float,
                 command_timeout: float | None, idle_lifetime: float,
                 statement_cache_size: int = 0,
                 settings: dict[str, str] | None = None,
                 reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                 init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None) -> None:
        timeout_ms = int(statement_timeout * 1000)
        self._options: dict[str, Any] = {
            "min_size": 0, "max_size": max_size, "timeout": connect_timeout,
            "command_timeout": command_timeout,
            # Idle connections go away so we do not hold a slot between rounds forever.
            "max_inactive_connection_lifetime": idle_lifetime,
            "statement_cache_size": statement_cache_size,
            "server_settings": {
                "application_name": application_name,
                "statement_timeout": str(timeout_ms),
                "lock_timeout": str(min(timeout_ms, 1000)),
                "default_transaction_read_only": "on",
                "idle_in_transaction_session_timeout": str(timeout_ms),
                **(settings or {}),
            },
        }
        if reset is not None:
            self._options["reset"] = reset
        if init is not None:
            self._options["init"] = init
        self._dsn = dsn
        self._pool: asyncpg.Pool | None = None

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = asyncpg.create_pool(self._dsn, **self._options)
        try:
            return await self._pool
        except BaseException:
            pool, self._pool = self._pool, None
            pool.terminate()
            raise

    @property
    def width(self) -> int:
        """Connections at once: how many sessions an on-scrape round opens (Lane)."""
        return int(self._options["max_size"])

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection of the pool, held across several collectors' runs (Lane). No
        acquire timeout of its own: the round bounds it (asyncpg would wrap the acquire in
        one more task and timer)."""
        pool = await self.pool()
        async with pool.acquire() as conn:
            yield conn

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool = None


def collector_pool(dsn: str, application_name: str, *, max_size: int, timeout: float,
                   interval: float,
                   reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
                   statement_cache_size: int = 0) -> ReadOnlyPool:
    """The pool shared by an exporter's collectors; `timeout` is the longest of theirs.

    The pool's limits (connect, statement) are that longest timeout, so none cuts a
    collector's own; each run is bounded by its collector's timeout (pool acquire, and the
    scheduler's cancellation, which asyncpg passes on to the server as a cancel). No
    client-side command timeout: the scheduler bounds every run already, and asyncpg's
    would arm and cancel one more event-loop timer per statement. The
    server cancels whatever outlives the longest timeout, even if this process is gone.
    An idle connection is closed after four rounds (at least a minute), so slow rounds do
    not hold a slot between them. `reset` replaces asyncpg's reset on release
    (`keep_session` when the collectors' statements leave no session state).
    `statement_cache_size` above 0 keeps each query prepared on its connection: one round
    trip per query instead of two (prepare, then execute), for SQL fixed in the code.
    """
    return ReadOnlyPool(dsn, application_name=application_name, max_size=max_size,
                        statement_timeout=timeout, connect_timeout=timeout,
                        command_timeout=None, idle_lifetime=max(60.0, 4 * interval),
                        reset=reset, statement_cache_size=statement_cache_size)
