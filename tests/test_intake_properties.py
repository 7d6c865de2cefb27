"""Property-based intake: arbitrary bytes and mutated real messages.

Whatever arrives, intake returns an outcome (it never raises) and nothing is
lost: each input's raw bytes are archived and an InboundMail row stands for it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from intakekit import SIGNING_ENV, SIGNING_KEY, MovableClock, build_app
from test_corpus import corpus_files

from mailbot.app import App
from mailbot.archive import archive_path
from mailbot.inbound import Origin, Outcome
from mailbot.models import InboundMail

DATA = Path(__file__).parent / "data"
SEEDS = [p.read_bytes() for p in sorted(DATA.glob("*.eml"))] + [
    p.read_bytes() for p in corpus_files()[::8]
]
ORIGIN = Origin("import", "", "property")
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# Bytes that break mail in interesting ways: line ends, NUL, 8-bit, MIME syntax.
NASTY = [b"\r", b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"=?", b"?=", b"--", b":", b"\t"]


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    yield build_app(tmp_path, MovableClock(), lean=True)


def _assert_kept(app: App, raw: bytes) -> None:
    result = app.intake.receive(raw, ORIGIN)

    assert result.outcome in set(Outcome)
    digest = hashlib.sha256(raw).hexdigest()
    assert archive_path(app.settings.storage.data_dir, digest).read_bytes() == raw
    with app.sessions() as session:
        inbound = session.get(InboundMail, result.inbound_id)
        assert inbound is not None
        assert Path(inbound.raw_path).is_file()


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """A real message with a few bytes cut, replaced or inserted."""
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["cut", "insert", "replace", "truncate"]))
        if action == "cut":
            del raw[at : at + draw(st.integers(1, 64))]
        elif action == "truncate":
            del raw[at:]
        else:
            piece = draw(st.sampled_from(NASTY) | st.binary(min_size=1, max_size=8))
            width = len(piece) if action == "replace" else 0
            raw[at : at + width] = piece
    return bytes(raw)


@FUZZ
@given(raw=st.binary(max_size=3000))
def test_arbitrary_bytes_are_kept_and_never_raise(app: App, raw: bytes) -> None:
    _assert_kept(app, raw)


@FUZZ
@given(raw=mutated_messages())
def test_mutated_messages_are_kept_and_never_raise(app: App, raw: bytes) -> None:
    _assert_kept(app, raw)
