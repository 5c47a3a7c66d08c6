"""What each worker remembers between requests: users' data versions, checked tokens, and
answers labelled with a data version (service/answers.py).

All live in memory only while a dedicated connection LISTENs to what the database
announces (migration 0002): a new data version of a user on ``printapi_changes``, a revoked
or deleted token on ``printapi_tokens``. While that connection is down, nothing is
remembered and every request asks the database, so a missed announcement can never make a
stale answer. Announcements arrive a few milliseconds after the change commits: a poll in
that window may still see the old version, and a just-revoked token may pass once more.

A connection can also stay open on this side while nothing comes through it: its server
process hangs, or a network cut leaves no reset to read. So the connection is probed every
RECONNECT_DELAY seconds, and given up when a probe goes unanswered for PROBE_TIMEOUT: such
a silence makes stale answers for at most about three seconds.
"""

import asyncio
import collections
import contextlib
import datetime
import logging

import asyncpg

from service.answers import Answer, AnswerCache

logger = logging.getLogger(__name__)

CHANGES_CHANNEL = "printapi_changes"
TOKENS_CHANNEL = "printapi_tokens"
#: The listening connection's application_name, as pg_stat_activity shows it.
LISTENER_NAME = "printapi-listener"
#: Seconds between attempts to reconnect the listening connection, and between its probes.
RECONNECT_DELAY = 1.0
#: Seconds the listening connection has to answer a probe before it is given up.
PROBE_TIMEOUT = 2.0


class _Lru:
    """A mapping that forgets its least recently used entries beyond ``size``."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict = collections.OrderedDict()

    def get(self, key):
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key, value) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class ChangeFeed:
    """Users' data versions and token owners, kept current by the database's announcements."""

    def __init__(self, dsn: str, size: int = 100_000, answer_bytes: int = 0) -> None:
        self._dsn = dsn
        self._versions = _Lru(size)
        self._tokens = _Lru(size)
        self._answers = AnswerCache(answer_bytes)
        self._connection: asyncpg.Connection | None = None
        #: The connection being set up, closed if it fails before it listens.
        self._connecting: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._epoch = 0
        self._token_changes = 0
        self.listening = asyncio.Event()
        self._first_attempt = asyncio.Event()

    async def start(self) -> None:
        """Starts listening in the background; returns once the first attempt is over.

        A database that is down does not stop the app from starting: requests then answer
        503 until it is back, and the feed keeps trying.
        """
        self._task = asyncio.create_task(self._listen_forever())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), timeout=5)

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()

    # What requests read and write.

    @property
    def epoch(self) -> int | None:
        """Which life of the listening connection this is, or None while it is down.

        Take it before reading from the database, and hand it back when remembering what
        was read: if the connection dropped in between, announcements may have been missed
        and the value is not kept.
        """
        return self._epoch if self.listening.is_set() else None

    def version(self, user_id: int) -> int | None:
        """The user's data version, when it is known and the feed is live."""
        return self._versions.get(user_id) if self.listening.is_set() else None

    def remember_version(self, user_id: int, version: int, epoch: int | None) -> None:
        """Keeps a version read from the database, unless an announcement brought a newer one."""
        if epoch is not None and epoch == self.epoch:
            self._raise_version(user_id, version)

    def answer(self, user_id: int, what, version: int) -> Answer | None:
        """The kept answer to ``what`` for the user, if it was read under ``version``.

        ``version`` is the user's current one, as ``version()`` or the database gave it.
        """
        if not self.listening.is_set():
            return None
        return self._answers.get(user_id, what, version)

    def remember_answer(self, user_id: int, what, answer: Answer) -> None:
        """Keeps an answer while its version is still the user's current one."""
        if self.version(user_id) == answer.version:
            self._answers.put(user_id, what, answer)

    @property
    def token_epoch(self) -> tuple[int, int] | None:
        """Like ``epoch``, and also moved by every token announcement.

        A token read from the database is kept only if no token changed meanwhile: the
        announcement of its revocation may have come before the read's answer.
        """
        epoch = self.epoch
        return None if epoch is None else (epoch, self._token_changes)

    def token_owner(self, kind: str, digest: bytes) -> int | None:
        """The user of a remembered live token; None when unknown, expired or feed down."""
        if not self.listening.is_set():
            return None
        known = self._tokens.get((kind, digest))
        if known is None:
            return None
        user_id, expires_at = known
        if expires_at is not None and expires_at <= datetime.datetime.now(datetime.UTC):
            self._tokens.pop((kind, digest))
            return None
        return user_id

    def remember_token(
        self,
        kind: str,
        digest: bytes,
        user_id: int,
        expires_at: datetime.datetime | None,
        token_epoch: tuple[int, int] | None,
    ) -> None:
        if token_epoch is not None and token_epoch == self.token_epoch:
            self._tokens.put((kind, digest), (user_id, expires_at))

    def forget_token(self, digest: bytes) -> None:
        for kind in ("api", "session"):
            self._tokens.pop((kind, digest))

    def _raise_version(self, user_id: int, version: int) -> None:
        known = self._versions.get(user_id)
        self._versions.put(user_id, version if known is None else max(known, version))

    # The listening connection.

    def _on_change(self, _connection, _pid, _channel, payload: str) -> None:
        user, _, version = payload.partition(" ")
        self._raise_version(int(user), int(version))

    def _on_token(self, _connection, _pid, _channel, payload: str) -> None:
        self._token_changes += 1
        if payload == "*":
            self._tokens.clear()
        else:
            self.forget_token(bytes.fromhex(payload))

    def _on_lost(self, _connection) -> None:
        self._forget_all()

    def _forget_all(self) -> None:
        self.listening.clear()
        self._versions.clear()
        self._tokens.clear()
        self._answers.clear()

    async def _connect(self) -> None:
        # XXX: asyncpg's default connect timeout (60 s) applies: against a server that does
        # not answer at all, one attempt can take that long. Requests ask the database
        # meanwhile, as they do whenever the feed is away.
        self._connecting = None
        connection = await asyncpg.connect(
            self._dsn, server_settings={"application_name": LISTENER_NAME}
        )
        self._connecting = connection
        connection.add_termination_listener(self._on_lost)
        await connection.add_listener(CHANGES_CHANNEL, self._on_change)
        await connection.add_listener(TOKENS_CHANNEL, self._on_token)
        self._connection = connection
        self._epoch += 1
        self.listening.set()

    async def _disconnect(self) -> None:
        self._forget_all()
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)

    async def _listen_forever(self) -> None:
        while not self._closing:
            if self._connection is None or self._connection.is_closed():
                await self._disconnect()
                try:
                    await self._connect()
                except Exception as error:
                    # Besides network and server errors, asyncpg raises its own when the
                    # server ends the session midway: none may end this loop.
                    logger.warning("cannot listen for changes, will retry: %r", error)
                    self._abandon(self._connecting)
                self._first_attempt.set()
            else:
                await self._probe()
            await asyncio.sleep(RECONNECT_DELAY)

    async def _probe(self) -> None:
        """Gives the connection up, forgetting everything, unless it answers in time."""
        connection = self._connection
        try:
            await connection.fetchval("SELECT 1", timeout=PROBE_TIMEOUT)
        except Exception as error:
            logger.warning("the change feed's connection stopped answering: %r", error)
            self._forget_all()
            self._connection = None
            self._abandon(connection)

    @staticmethod
    def _abandon(connection: asyncpg.Connection | None) -> None:
        """Closes a connection at once, without waiting on a server that may not answer."""
        if connection is not None and not connection.is_closed():
            connection.terminate()
