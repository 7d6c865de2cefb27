"""Every message of the shared robustness corpus goes through intake unharmed.

Reads ``/work/shared/corpus`` in place (Stalwart mail-parser and CPython email
test messages). Each message must end as a ticket, a follow-up, automatic mail,
a duplicate or a quarantined record with its reason; none may raise, and the
raw bytes of each are archived.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest
from intakekit import SIGNING_ENV, SIGNING_KEY, MovableClock, build_app

from mailbot.archive import archive_path
from mailbot.inbound import Origin, Outcome
from mailbot.models import InboundMail

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_files() -> list[Path]:
    """The corpus messages, in a stable order, without the licence texts."""
    return sorted(
        path
        for path in CORPUS.rglob("*")
        if path.is_file() and not path.name.startswith(("LICENSE", "README"))
    )


def test_every_corpus_message_ends_in_a_known_outcome(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    app = build_app(tmp_path, MovableClock(), lean=True)
    files = corpus_files()

    results = [
        app.intake.receive(path.read_bytes(), Origin("import", "", f"file:{path}"))
        for path in files
    ]

    outcomes = Counter(str(r.outcome) for r in results)
    assert len(files) == 155
    assert outcomes == {
        "ticket": 104,
        "automatic": 6,
        "duplicate": 6,
        "quarantined": 39,
    }
    quarantine_reasons = Counter(
        r.reason for r in results if r.outcome == Outcome.QUARANTINED
    )
    assert quarantine_reasons == {"no usable sender address in From": 39}
    # No message reached the catch-all boundary (an unexpected exception).
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
    data_dir = app.settings.storage.data_dir
    with app.sessions() as session:
        for path, result in zip(files, results, strict=True):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert archive_path(data_dir, digest).read_bytes() == path.read_bytes()
            assert session.get(InboundMail, result.inbound_id) is not None
