"""Per-loan data keys: every payload of a loan's workflows is encrypted with its own loan's key.

The key (32 random bytes) is stored in `loan_data_keys` only wrapped by a master key of the ring (AES-GCM,
the associated data binds the row's data_key_id, so a wrapped key copied onto another row does not open).
Erasure (`destroy_loan_key`) wipes the wrapped key: the loan's payloads, in every history and every backup
of Temporal, can then no longer be decrypted by anyone.

Unwrapped keys are cached in memory per process (bounded LRU with a TTL, `OVERDUE_CODEC_KEY_CACHE_SECONDS`,
60 s by default): a destroy in this process evicts at once; other processes stop decrypting within the TTL.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from privacy.keyring import DEFAULT_KEY_CACHE_SECONDS, KEY_BYTES, KeyProvider

# A pool, or how to open one on first need (the CLI opens its database only when a loan key is needed).
PoolSource: TypeAlias = asyncpg.Pool | Callable[[], Awaitable[asyncpg.Pool]]
# What destroy_loan_key runs on: a pool, or a connection (to destroy inside the caller's transaction).
Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection | PoolConnectionProxy


class CodecError(RuntimeError):
    """A payload cannot be encrypted or decrypted; the message says why (never with payload contents)."""


class KeyDestroyed(CodecError):
    """The loan's data key was destroyed by an erasure: its payloads are unreadable for good."""

    def __init__(self, data_key_id: uuid.UUID | str, destroyed_at: object = None) -> None:
        self.data_key_id = str(data_key_id)
        when = f" at {destroyed_at}" if destroyed_at is not None else ""
        super().__init__(f"data key {self.data_key_id} was destroyed{when} (erased): payload unreadable")


class DataKeyUnavailable(CodecError):
    """The data key cannot be reached: no database for this client, or an unknown data key id."""


@dataclass(frozen=True)
class DataKey:
    id: uuid.UUID
    key: bytes


def wrap_context(data_key_id: uuid.UUID) -> bytes:
    """Associated data of a wrapped data key: it opens only on its own row."""
    return b"overdue/loan-data-key/v1/" + str(data_key_id).encode()


class _TtlLru:
    """A small LRU whose entries also expire: bounded memory, bounded staleness."""

    def __init__(self, size: int, ttl: float) -> None:
        self.size, self.ttl = size, ttl
        self._items: OrderedDict[object, tuple[float, DataKey]] = OrderedDict()

    def get(self, name: object) -> DataKey | None:
        found = self._items.get(name)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._items[name]
            return None
        self._items.move_to_end(name)
        return found[1]

    def put(self, name: object, value: DataKey) -> None:
        self._items[name] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(name)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def evict(self, *names: object) -> None:
        for name in names:
            self._items.pop(name, None)


# Every store in this process, so that a destroy evicts the key from all of them at once.
_STORES: weakref.WeakSet[DataKeyStore] = weakref.WeakSet()


class DataKeyStore:
    """Loan data keys from `loan_data_keys`, created on first use, cached (see the module docstring)."""

    def __init__(
        self,
        pool: PoolSource,
        keys: KeyProvider,
        *,
        ttl: float = DEFAULT_KEY_CACHE_SECONDS,
        size: int = 10_000,
    ) -> None:
        self._pool_source = pool
        self._pool: asyncpg.Pool | None = pool if isinstance(pool, asyncpg.Pool) else None
        self._opening = asyncio.Lock()
        self.keys = keys
        self._by_loan = _TtlLru(size, ttl)
        self._by_id = _TtlLru(size, ttl)
        _STORES.add(self)

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    assert not isinstance(self._pool_source, asyncpg.Pool)
                    self._pool = await self._pool_source()
        return self._pool

    async def for_loan(self, loan_id: str) -> DataKey:
        """The loan's data key, created (race-safe) on first use; `KeyDestroyed` once the loan is erased."""
        cached = self._by_loan.get(loan_id)
        if cached is not None:
            return cached
        pool = await self.pool()
        row = await pool.fetchrow(_SELECT_BY_LOAN, loan_id)
        if row is None:
            data_key_id = uuid.uuid4()
            master_key_id, wrapped = await self.keys.wrap(
                secrets.token_bytes(KEY_BYTES), wrap_context(data_key_id)
            )
            # Two processes may create the loan's first key at once: the first insert wins, both use it.
            row = await pool.fetchrow(
                "INSERT INTO loan_data_keys (loan_id, data_key_id, wrapped_key, master_key_id) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (loan_id) DO NOTHING "
                "RETURNING loan_id, data_key_id, wrapped_key, master_key_id, destroyed_at",
                loan_id,
                data_key_id,
                wrapped,
                master_key_id,
            ) or await pool.fetchrow(_SELECT_BY_LOAN, loan_id)  # the other insert won: use its key
            if row is None:  # deleted between the two statements (an erasure racing the first write)
                raise DataKeyUnavailable("the loan's data key vanished while being created; retry")
        key = await self._unwrap(row)
        self._remember(loan_id, key)
        return key

    async def by_id(self, data_key_id: uuid.UUID) -> DataKey:
        """The data key a payload names; `KeyDestroyed` after an erasure, `DataKeyUnavailable` if unknown."""
        cached = self._by_id.get(data_key_id)
        if cached is not None:
            return cached
        row = await (await self.pool()).fetchrow(
            "SELECT loan_id, data_key_id, wrapped_key, master_key_id, destroyed_at "
            "FROM loan_data_keys WHERE data_key_id = $1",
            data_key_id,
        )
        if row is None:
            raise DataKeyUnavailable(
                f"data key {data_key_id} is not in loan_data_keys of this database (another database, "
                "or the row was deleted)"
            )
        key = await self._unwrap(row)
        self._remember(row["loan_id"], key)
        return key

    async def _unwrap(self, row: asyncpg.Record) -> DataKey:
        if row["destroyed_at"] is not None or row["wrapped_key"] is None:
            raise KeyDestroyed(row["data_key_id"], row["destroyed_at"])
        data_key_id = row["data_key_id"]
        wrapped = bytes(row["wrapped_key"])
        key = await self.keys.unwrap(row["master_key_id"], wrapped, wrap_context(data_key_id))
        return DataKey(data_key_id, key)

    def _remember(self, loan_id: str, key: DataKey) -> None:
        self._by_loan.put(loan_id, key)
        self._by_id.put(key.id, key)

    def evict(self, loan_id: str, data_key_id: uuid.UUID | None) -> None:
        cached = self._by_loan.get(loan_id)
        self._by_loan.evict(loan_id)
        self._by_id.evict(*(k.id for k in (cached,) if k is not None), data_key_id)


_SELECT_BY_LOAN = (
    "SELECT loan_id, data_key_id, wrapped_key, master_key_id, destroyed_at FROM loan_data_keys "
    "WHERE loan_id = $1"
)


async def destroy_loan_key(pool: Executor, loan_id: str) -> bool:
    """Erase the loan's data key: its payloads in Temporal become unreadable (here at once, elsewhere within
    the cache TTL). Returns True when a live key was destroyed, False when there was none to destroy.

    A loan that never had a key gets a destroyed row too, so nothing can be encrypted for it afterwards.
    Terminate or cancel the loan's workflows before: their next payloads could not be encrypted. Given a
    connection inside a transaction, the key goes with the transaction; this process's caches are evicted at
    once either way (a rolled-back destroy only costs a re-read).
    """
    row = await pool.fetchrow(
        """
        WITH before AS (SELECT data_key_id, destroyed_at FROM loan_data_keys WHERE loan_id = $1)
        INSERT INTO loan_data_keys AS k (loan_id, data_key_id, wrapped_key, master_key_id, destroyed_at)
        VALUES ($1, $2, NULL, NULL, now())
        ON CONFLICT (loan_id) DO UPDATE
            SET wrapped_key = NULL, destroyed_at = coalesce(k.destroyed_at, now())
        RETURNING k.data_key_id, (SELECT destroyed_at IS NULL FROM before) AS was_live
        """,
        loan_id,
        uuid.uuid4(),
    )
    assert row is not None
    for store in list(_STORES):
        store.evict(loan_id, row["data_key_id"])
    return bool(row["was_live"])


async def rewrap_all(pool: asyncpg.Pool, keys: KeyProvider, *, batch: int = 500) -> int:
    """After a rotation: re-wrap every live data key under the active master key (the payloads stay as they
    are: they name the data key, not the master key). Returns how many keys were re-wrapped; afterwards the
    old master key is needed only for payloads it encrypted directly (those without a loan)."""
    active = keys.active_key_id
    done = 0
    while True:
        rows = await pool.fetch(
            "SELECT data_key_id, wrapped_key, master_key_id FROM loan_data_keys "
            "WHERE destroyed_at IS NULL AND master_key_id <> $1 ORDER BY data_key_id LIMIT $2",
            active,
            batch,
        )
        if not rows:
            return done
        for row in rows:
            context = wrap_context(row["data_key_id"])
            key = await keys.unwrap(row["master_key_id"], bytes(row["wrapped_key"]), context)
            master_key_id, wrapped = await keys.wrap(key, context)
            # Only if still live and unchanged: an erasure in between must win.
            updated = await pool.execute(
                "UPDATE loan_data_keys SET wrapped_key = $2, master_key_id = $3 "
                "WHERE data_key_id = $1 AND destroyed_at IS NULL AND master_key_id = $4",
                row["data_key_id"],
                wrapped,
                master_key_id,
                row["master_key_id"],
            )
            done += updated == "UPDATE 1"
        if len(rows) < batch:
            return done
