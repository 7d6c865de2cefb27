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

from mailbot.app import App
from mailbot.archive import archive_path
from mailbot.inbound import Origin, Outcome, Result
from mailbot.models import InboundMail

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_files() -> list[Path]:
    """The corpus messages, in a stable order, without the licence texts."""
    return sorted(
        path
        for path in CORPUS.rglob("*")
        if path.is_file() and not path.name.startswith(("LICENSE", "README"))
    )


def _receive(app: App, files: list[Path], batch: int) -> list[Result]:
    messages = [(p.read_bytes(), Origin("import", "", f"file:{p}")) for p in files]
    if batch == 1:
        return [app.intake.receive(raw, origin) for raw, origin in messages]
    return [
        result
        for start in range(0, len(messages), batch)
        for result in app.intake.receive_batch(messages[start : start + batch])
    ]


# One message per transaction, and batches of 25 as `mailbot import` makes
# them: the same outcomes, and no batch had to be taken apart again.
@pytest.mark.parametrize("batch", [1, 25])
def test_every_corpus_message_ends_in_a_known_outcome(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    batch: int,
) -> None:
    monkeypatch.setenv(SIGNING_ENV, SIGNING_KEY)
    app = build_app(tmp_path, MovableClock(), lean=True)
    files = corpus_files()

    results = _receive(app, files, batch)

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
    assert quarantine_reasons == {
        "no usable sender address in From": 37,
        "no header fields: not an email message, or its first line is broken": 2,
    }
    # No message reached the catch-all boundary (an unexpected exception),
    # and no batch was rolled back.
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []
    assert [r for r in caplog.records if "rolled back" in r.getMessage()] == []
    data_dir = app.settings.storage.data_dir
    with app.sessions() as session:
        for path, result in zip(files, results, strict=True):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert archive_path(data_dir, digest).read_bytes() == path.read_bytes()
            assert session.get(InboundMail, result.inbound_id) is not None
