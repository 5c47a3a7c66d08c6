"""Loads the hand-written statements in sql/ by name, and refuses a malformed file at start-up.

Each file holds one statement. Its stem is the name the Python code uses, and its first
lines are a ``--`` comment that says what the statement returns.
"""

import re
from pathlib import Path

import attrs

from service import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"

_PARAMETER = re.compile(r"\$(\d+)")
_QUOTED_OR_COMMENT = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*")


class SQLLoadError(Exception):
    """A file in sql/ cannot be used; the message names the file and what is wrong."""


@attrs.frozen
class Query:
    """One statement: its name, its text, what its leading comment says, its parameter count."""

    name: str
    text: str
    doc: str
    parameter_count: int


def _parse(path: Path) -> Query:
    """Reads one file and checks it holds one documented statement with parameters $1..$n."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SQLLoadError(f"{path}: cannot be read: {error}") from error

    lines = text.strip().splitlines()
    if not lines:
        raise SQLLoadError(f"{path}: is empty")
    doc_lines = []
    for line in lines:
        if not line.startswith("--"):
            break
        doc_lines.append(line[2:].strip())
    if not doc_lines:
        raise SQLLoadError(f"{path}:1: must open with a -- comment saying what it returns")

    code = _QUOTED_OR_COMMENT.sub(" ", text).strip()
    if not code:
        raise SQLLoadError(f"{path}: holds a comment but no statement")
    if ";" in code.rstrip(";"):
        line_number = text[: text.index(";")].count("\n") + 1
        raise SQLLoadError(f"{path}:{line_number}: holds more than one statement")

    used = sorted({int(number) for number in _PARAMETER.findall(code)})
    if used != list(range(1, len(used) + 1)):
        raise SQLLoadError(f"{path}: parameters must be $1..$n with none missing, found {used}")

    return Query(
        name=path.stem,
        text=text.strip().rstrip(";"),
        doc=" ".join(doc_lines),
        parameter_count=len(used),
    )


class Queries:
    """Every statement of a directory, each reachable as an attribute named after its file."""

    def __init__(self, directory: Path = SQL_DIR) -> None:
        paths = sorted(directory.glob("*.sql"))
        if not paths:
            raise SQLLoadError(f"{directory}: holds no .sql file")
        self._by_name = {query.name: query for query in map(_parse, paths)}

    def __getattr__(self, name: str) -> Query:
        try:
            return self._by_name[name]
        except KeyError:
            raise AttributeError(f"no statement named {name!r} in sql/") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self._by_name.values())
