"""What an operating-system error means for a store, by errno: shared by the
adapters' mappings (`sinks/qdrant/errors.py`, `sinks/neo4j/errors.py`), so a
full disk reads the same whichever store hits it.

A connection that fails is a store that is not there right now; a permission,
a read-only or a full file system keeps failing until someone acts, so it
pauses the sink and says so (`StoreNeedsOperator`) instead of passing for a
restart."""

from __future__ import annotations

import errno
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from core.types import StoreError, StoreNeedsOperator, StoreUnavailable

# The label each errno gets in `StoreNeedsOperator.reason`, and what to do about it.
NEEDS_OPERATOR: dict[int, str] = {
    errno.EACCES: "permission",
    errno.EPERM: "permission",
    errno.EROFS: "read_only",
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EMFILE: "open_files",
    errno.ENFILE: "open_files",
    errno.EIO: "io_error",
}
REMEDIES: dict[str, str] = {
    "permission": "give the worker's user write access to the store's data",
    "read_only": "remount the store's file system read-write",
    "disk_full": "free disk space (or raise the quota) where the store keeps its data",
    "open_files": "raise the worker's open-file limit (ulimit -n)",
    "io_error": "check the disk: the kernel reported an I/O error",
    "credentials": "fix the store's credentials in the worker's settings",
    "tls": "fix the TLS settings of the store's connection",
    "missing_collection": "recreate the collection (restart the worker) or fix the name",
    "old_layout": "remove the old data and replay the topics into a new generation",
    "os_error": "see the error: the machine refuses the store's file operations",
}
# A connection that broke or never started: the store may well come back.
UNAVAILABLE = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EPIPE,
        errno.EAGAIN,
        errno.EINTR,
    }
)


def remedy(reason: str) -> str:
    return REMEDIES.get(reason, "see the error")


def needs_operator(
    store: str, detail: str, reason: str, fix: str | None = None
) -> StoreNeedsOperator:
    """A `StoreNeedsOperator` whose message carries the remedy for its reason:
    `fix` when the store's adapter can name the setting, else the generic one."""
    return StoreNeedsOperator(store, f"{detail} ({reason}: {fix or remedy(reason)})", reason)


def tls_failure(exc: BaseException) -> ssl.SSLError | None:
    """The TLS error behind `exc` (its causes followed), if one is: a client
    library wraps it in its own connection error, which alone reads as an
    outage to wait out, while no retry can make a certificate trusted."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def from_errno(store: str, number: int | None, detail: str) -> StoreError:
    """The contract's error for an OS error number (None: no number known)."""
    if number in NEEDS_OPERATOR:
        return needs_operator(store, detail, NEEDS_OPERATOR[number])
    if number is None or number in UNAVAILABLE:
        return StoreUnavailable(store, detail)
    return needs_operator(store, detail, "os_error")


def from_os_error(store: str, exc: OSError) -> StoreError:
    """An OSError raised without a number (a timeout or a refused connection
    raised by hand) says nothing lasting: the store is unavailable."""
    return from_errno(store, exc.errno, str(exc) or type(exc).__name__)


@contextmanager
def mapped_by(store_error: Callable[[Exception], StoreError | None]) -> Iterator[None]:
    """Raise `store_error(exc)`, chained to `exc`, for what it calls a store
    failure; anything else (a bug in our own code) propagates unchanged."""
    try:
        yield
    except StoreError:
        raise
    except Exception as exc:
        error = store_error(exc)
        if error is None:
            raise
        raise error from exc
