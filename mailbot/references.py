"""Ticket references: ``PRG-2026-000123-8``, gap-free per year, with a check digit.

The check digit is Damm's: it catches every single mistyped digit and every swap
of two neighbouring digits, the two mistakes people make when they copy a number
from a letter or a phone screen.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

from sqlalchemy import Insert, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from mailbot.errors import InvalidReferenceError
from mailbot.models import ReferenceCounter

# Damm's quasigroup of order 10, weakly totally anti-symmetric.
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)

# ASCII digits only: "\d" would also read Arabic-Indic or full-width digits.
_PATTERN = re.compile(r"\b([A-Za-z]{2,6})-([0-9]{4})-([0-9]{6})-([0-9])\b", re.ASCII)
_BRACKETED = re.compile(rf"\[\s*{_PATTERN.pattern}\s*\]|{_PATTERN.pattern}", re.ASCII)
log = logging.getLogger(__name__)

_SEQ_LIMIT = 999_999
# The highest number `references --last` may set: one must be left to give.
LAST_SETTABLE = _SEQ_LIMIT - 1


def check_digit(digits: str) -> int:
    """Damm's check digit of a string of decimal digits."""
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return interim


@dataclass(frozen=True, order=True)
class Reference:
    prefix: str
    year: int
    seq: int

    def __str__(self) -> str:
        body = f"{self.year:04d}{self.seq:06d}"
        return f"{self.prefix}-{self.year:04d}-{self.seq:06d}-{check_digit(body)}"


def parse_reference(text: str, prefix: str) -> Reference:
    """Read a reference typed by a person; refuse a wrong check digit."""
    match = _PATTERN.fullmatch(text.strip())
    if match is None:
        raise InvalidReferenceError(
            f"{text.strip()!r} is not a reference like PRG-2026-000123-8"
        )

    found = _from_match(match)
    if found is None:
        raise InvalidReferenceError(f"{text.strip()!r}: the check digit does not match")
    if found.prefix != prefix:
        raise InvalidReferenceError(
            f"{text.strip()!r}: references here start with {prefix}"
        )
    return found


def find_references(text: str, prefix: str, *, checked: bool = True) -> list[Reference]:
    """Every valid reference with this prefix in a text, such as a subject.

    With ``checked`` false, also those written with a wrong check digit, read
    as the reference their year and number name.
    """
    found = []
    for match in _PATTERN.finditer(text):
        reference = _from_match(match, checked=checked)
        if reference is not None and reference.prefix == prefix:
            found.append(reference)
    return found


def without_references(text: str, prefix: str) -> str:
    """The text with every reference of this prefix taken out, in any case,
    bracketed or not, with a right check digit or a wrong one."""

    def cut(match: re.Match[str]) -> str:
        named = match.group(1) or match.group(5)
        return " " if named.upper() == prefix else match.group(0)

    return _BRACKETED.sub(cut, text)


def _from_match(match: re.Match[str], *, checked: bool = True) -> Reference | None:
    prefix, year, seq, digit = match.groups()
    if checked and check_digit(year + seq) != int(digit):
        return None
    return Reference(prefix.upper(), int(year), int(seq))


def allocate(session: Session, prefix: str, year: int) -> Reference:
    """Take the next number of the year inside the caller's transaction.

    The counter row is updated in place, so concurrent workers serialise on it and
    a rolled-back ticket gives its number back: references stay gap-free.
    """
    # The counter does not depend on rows still pending in the session.
    connection = session.connection()
    statement = _next_number(connection.dialect.name)
    seq = connection.execute(statement, {"year": year}).scalar_one()
    if seq > _SEQ_LIMIT:
        raise InvalidReferenceError(f"year {year} has used all {_SEQ_LIMIT} references")
    return Reference(prefix, year, seq)


@functools.cache
def _next_number(dialect: str) -> Insert:
    # Run for every ticket: built once per database kind.
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(ReferenceCounter)
        .values(year=bindparam("year"), last_seq=1)
        .on_conflict_do_update(
            index_elements=[ReferenceCounter.year],
            set_={"last_seq": ReferenceCounter.last_seq + 1},
        )
        .returning(ReferenceCounter.last_seq)
    )


def set_last_allocated(session: Session, year: int, seq: int) -> None:
    """Mark ``seq`` as the year's last number handed out; never lower it.

    For a database restored from a backup: the numbers given out after the
    backup must not be given to other complaints again.
    """
    if not 1 <= seq <= _SEQ_LIMIT:
        raise InvalidReferenceError(f"a number of the year runs from 1 to {_SEQ_LIMIT}")
    last = last_allocated(session, year)
    if seq < last:
        raise InvalidReferenceError(
            f"{year}: {last} references are given out already; the counter "
            "never goes back"
        )
    counter = session.get(ReferenceCounter, year)
    if counter is None:
        session.add(ReferenceCounter(year=year, last_seq=seq))
    else:
        counter.last_seq = seq
    log.warning("references %d: counter moved from %d to %d by hand", year, last, seq)


def last_allocated(session: Session, year: int) -> int:
    """The last number handed out in a year, 0 when none."""
    row = session.scalar(
        select(ReferenceCounter.last_seq).where(ReferenceCounter.year == year)
    )
    return row or 0
