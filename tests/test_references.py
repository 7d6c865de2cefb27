"""References: format, Damm check digit, parsing and gap-free allocation."""

from pathlib import Path

import pytest
from conftest import fresh_postgres_database
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mailbot.db import make_engine, open_database
from mailbot.errors import InvalidReferenceError
from mailbot.intake import storage_trouble
from mailbot.references import (
    Reference,
    allocate,
    check_digit,
    find_references,
    last_allocated,
    parse_reference,
)


def test_reference_text_has_year_counter_and_check_digit() -> None:
    reference = Reference("PRG", 2026, 123)

    assert str(reference) == "PRG-2026-000123-8"


def test_check_digit_catches_every_single_digit_error_and_neighbour_swap() -> None:
    body = "2026000123"
    digit = check_digit(body)
    variants = [body[:i] + d + body[i + 1 :] for i in range(10) for d in "0123456789"]
    swaps = [body[:i] + body[i + 1] + body[i] + body[i + 2 :] for i in range(9)]

    undetected = [v for v in variants + swaps if v != body and check_digit(v) == digit]

    assert undetected == []


def test_parse_reference_accepts_a_valid_reference() -> None:
    assert parse_reference(" PRG-2026-000123-8 ", "PRG") == Reference("PRG", 2026, 123)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PRG-2026-000123-7", "'PRG-2026-000123-7': the check digit does not match"),
        ("PRG-2026-000132-8", "'PRG-2026-000132-8': the check digit does not match"),
        # Trial 36: the example had a wrong check digit; it is the reference
        # the test above accepts.
        (
            "PRG-2026-123-8",
            "'PRG-2026-123-8' is not a reference like PRG-2026-000123-8",
        ),
        ("SDA-2026-000123-8", "'SDA-2026-000123-8': references here start with PRG"),
    ],
)
def test_parse_reference_refuses_mistakes(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError) as caught:
        parse_reference(text, "PRG")

    assert str(caught.value) == message


def test_find_references_skips_wrong_check_digits_and_other_prefixes() -> None:
    subject = (
        "Re: [PRG-2026-000123-8] jalan rusak (PRG-2026-000124-0, SDA-2026-000001-5)"
    )

    found = find_references(subject, "PRG")

    assert [str(r) for r in found] == ["PRG-2026-000123-8"]


def test_references_are_written_in_ascii_digits_only() -> None:
    arabic_indic, full_width = "\u0662\u0660\u0662\u0666", "\uff12\uff10\uff12\uff16"
    subject = f"PRG-{arabic_indic}-000123-8 PRG-{full_width}-000123-8"

    assert find_references(subject, "PRG", checked=False) == []


def test_unchecked_references_are_read_with_their_right_check_digit() -> None:
    subject = "Re: [PRG-2026-000123-8] jalan rusak (PRG-2026-000124-0)"

    found = find_references(subject, "PRG", checked=False)

    assert [str(r) for r in found] == ["PRG-2026-000123-8", "PRG-2026-000124-6"]


def test_allocate_is_gap_free_per_year_and_returns_numbers_on_rollback(
    tmp_path: Path,
) -> None:
    sessions = open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with sessions.begin() as session:
        first = [allocate(session, "PRG", 2026) for _ in range(3)]
        other_year = allocate(session, "PRG", 2027)

    session = sessions()
    session.begin()
    allocate(session, "PRG", 2026)
    session.rollback()
    session.close()

    with sessions.begin() as session:
        after_rollback = allocate(session, "PRG", 2026)
        counters = (last_allocated(session, 2026), last_allocated(session, 2025))

    assert [r.seq for r in first] == [1, 2, 3]
    assert other_year == Reference("PRG", 2027, 1)
    assert after_rollback == Reference("PRG", 2026, 4)
    assert counters == (4, 0)


@pytest.mark.postgres
def test_a_worker_frozen_in_its_transaction_stops_holding_the_counter() -> None:
    # Trial 27: a stopped worker kept the counter row locked, and so every
    # other worker's intake, until it was woken. The server now ends the
    # frozen session; here after one second instead of five minutes.
    with fresh_postgres_database() as url:
        open_database(url).kw["bind"].dispose()
        frozen_engine = make_engine(url, idle_in_transaction_seconds=1)
        live_engine = make_engine(url)
        frozen = Session(frozen_engine)
        frozen.begin()
        first = allocate(frozen, "PRG", 2026)

        with Session(live_engine) as live, live.begin():
            # Fails the test instead of hanging it if the lock were kept.
            live.execute(text("SET LOCAL lock_timeout = '20s'"))
            taken = allocate(live, "PRG", 2026)

        with pytest.raises(DBAPIError, match="idle-in-transaction timeout") as ended:
            frozen.commit()
        frozen.close()
        frozen_engine.dispose()
        live_engine.dispose()

    assert (str(first), str(taken)) == ("PRG-2026-000001-5", "PRG-2026-000001-5")
    # Trial 33: the message such a worker was filing was quarantined as bad;
    # an ended session is the database's trouble, which stops intake instead.
    assert (type(ended.value).__name__, storage_trouble(ended.value)) == (
        "InternalError",
        True,
    )
