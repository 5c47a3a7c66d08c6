"""Answers a worker keeps, labelled with the user's data version they were read under.

Dashboards ask for the same page every few seconds, and mostly nothing changed. A kept
answer whose label still equals the user's current data version (service/changes.py) is
sent again as it is, or as a 304 when the client sends its ETag back, with no statement.

Why a label is safe: it is the version read *before* the answer's rows, or in the same
statement as them, so the rows are that version's state or a newer one. A newer state
means a newer version exists; once its announcement arrives, the label no longer matches
and the next request reads again. Until then the client gets an answer at least as new as
the version says, never an older one.
"""

import collections
from collections.abc import Hashable

import attrs

#: What an entry costs beyond its body: the key, the Answer, its ETag, the dict's slot.
#: tracemalloc showed about 450 bytes for a page's and for a print's entry.
ENTRY_OVERHEAD = 500


@attrs.frozen
class Answer:
    """One response body and its ETag, as read under the user's data version ``version``.

    ``body`` is None when only the ETag is known: a 304 was answered without reading rows.
    """

    version: int
    etag: str
    body: bytes | None = None


class AnswerCache:
    """Answers by (user id, what was asked), bounded by their bytes, least recently used out.

    An answer larger than ``max_bytes // 64`` is not kept, so one long list cannot empty
    the cache. ``max_bytes`` 0 keeps nothing.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_bytes // 64
        self.bytes = 0
        self._entries: collections.OrderedDict[tuple, Answer] = collections.OrderedDict()

    def get(self, user_id: int, what: Hashable, version: int) -> Answer | None:
        """The answer kept for ``what`` under ``version`` exactly, or None."""
        key = (user_id, what)
        answer = self._entries.get(key)
        if answer is None:
            return None
        if answer.version != version:
            if answer.version < version:
                self._drop(key)  # Never useful again: versions only rise.
            return None
        self._entries.move_to_end(key)
        return answer

    def put(self, user_id: int, what: Hashable, answer: Answer) -> None:
        size = _size(answer)
        if size > self.max_entry_bytes:
            return
        key = (user_id, what)
        self._drop(key)
        self._entries[key] = answer
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, key: tuple) -> None:
        answer = self._entries.pop(key, None)
        if answer is not None:
            self.bytes -= _size(answer)


def _size(answer: Answer) -> int:
    return ENTRY_OVERHEAD + (len(answer.body) if answer.body is not None else 0)
