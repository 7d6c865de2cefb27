"""The daily digest: every figure of a seeded day, its rendering and its sending."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.policy import default
from pathlib import Path

import pytest
from clirun import mailbot
from digest_scenario import ACCOUNTS, DAY, NOW, build, scenario_settings, wib
from seeding import CHAIN_STAFF_TOML, FixedClock, add_ticket
from sqlalchemy import select

from mailbot.app import App
from mailbot.digest import (
    AccountHealth,
    Backlog,
    DayFigures,
    Digest,
    OverdueTicket,
    Undelivered,
    UnitLoad,
    compute_digest,
    day_window,
    yesterday,
)
from mailbot.digest_mail import percent, render_digest
from mailbot.models import OutboxItem
from mailbot.policy import SlaConfig
from mailbot.service import Service, digest_queued

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "digest"


@pytest.fixture
def app(tmp_path: Path) -> App:
    return build(tmp_path)


def computed(app: App) -> Digest:
    with app.sessions() as session:
        return compute_digest(session, app.settings, DAY, NOW)


def test_the_day_figures_of_the_seeded_day(app: App) -> None:
    figures = computed(app).figures

    assert figures == DayFigures(
        received=4,
        answered=3,
        rejected=1,
        answered_on_time=2,
        median_response=timedelta(hours=23),
        slowest_response=timedelta(days=2, hours=1),
        automatic=2,
        forged=1,
        reopened=1,
        answered_again=1,
    )
    assert percent(figures.answered_on_time, figures.answered) == "66,7%"


def test_the_backlog_as_it_stands_at_seven_in_the_morning(app: App) -> None:
    backlog = computed(app).backlog

    assert backlog == Backlog(
        open=5,
        overdue=2,
        units=(
            UnitLoad("umum", "Subbagian Umum dan Kepegawaian", 2, 1),
            UnitLoad("pemerintahan", "Seksi Pemerintahan", 1, 0),
            UnitLoad("trantib", "Seksi Ketenteraman dan Ketertiban Umum", 0, 0),
            UnitLoad("pmd", "Seksi Pemberdayaan Masyarakat dan Desa", 0, 0),
            UnitLoad("kesos", "Seksi Kesejahteraan Sosial", 0, 0),
            UnitLoad("pelayanan", "Seksi Pelayanan Umum", 0, 0),
            UnitLoad("ekbang", "Seksi Perekonomian dan Pembangunan", 2, 1),
        ),
        overdue_tickets=(
            OverdueTicket(
                "PRG-2026-000007-7",
                "ekbang",
                timedelta(days=3, hours=22),
                timedelta(days=2, hours=22),
                "Jalan rusak, NIK 351501******8901",
                2,
            ),
            OverdueTicket(
                "PRG-2026-000008-9",
                "umum",
                timedelta(days=1, hours=11),
                timedelta(hours=11),
                "Petugas tidak ramah",
                1,
            ),
        ),
        waiting_identity=2,
    )


def test_undelivered_acknowledgements_and_mailbox_health(app: App) -> None:
    digest = computed(app)

    assert digest.undelivered == (
        Undelivered(
            "PRG-2026-000003-1",
            "Siti Aminah",
            wib(2, 13),
            "550 5.1.1 mailbox unavailable",
        ),
    )
    assert digest.undelivered_total == 1
    assert digest.accounts == (
        AccountHealth("dinas", "porong@sidoarjokab.go.id", wib(3, 6, 59), "", 0, False),
        AccountHealth(
            "gmail",
            "kecamatanporong@gmail.com",
            wib(2, 21, 58),
            "account gmail: log in failed: token revoked",
            1,
            True,
            12,
        ),
    )


def test_the_overdue_list_is_capped_and_the_rest_counted(tmp_path: Path) -> None:
    app = build(tmp_path)
    settings = app.settings.model_copy(
        update={"digest": app.settings.digest.model_copy(update={"overdue_rows": 1})}
    )

    with app.sessions() as session:
        digest = compute_digest(session, settings, DAY, NOW)
    text = render_digest(app.renderer, digest, settings).text

    assert [row.reference for row in digest.backlog.overdue_tickets] == [
        "PRG-2026-000007-7"
    ]
    assert "... dan 1 pengaduan lain yang lewat batas." in text


def test_a_long_subject_is_cut_in_the_overdue_list(app: App) -> None:
    with app.sessions.begin() as session:
        add_ticket(
            session,
            app.settings,
            NOW - timedelta(days=3),
            subject="Jalan rusak parah di depan balai desa " * 15,
        )

    text = render_digest(app.renderer, computed(app), app.settings).text

    (line,) = [row for row in text.splitlines() if "Jalan rusak parah" in row]
    assert line.strip() == (
        "Jalan rusak parah di depan balai desa Jalan rusak parah di depan balai "
        "desa Jalan rusak parah di..."
    )


def test_the_committed_example_is_what_the_scenario_renders(app: App) -> None:
    rendered = render_digest(app.renderer, computed(app), app.settings)

    assert rendered.text == (EXAMPLES / "digest.txt").read_text("utf-8")
    assert rendered.html == (EXAMPLES / "digest.html").read_text("utf-8")


def test_the_digest_carries_no_address_or_nik_of_a_citizen(app: App) -> None:
    rendered = render_digest(app.renderer, computed(app), app.settings)

    for part in (rendered.text, rendered.html):
        assert "warga@example.com" not in part
        assert "siti@example.com" not in part
        assert "3515012305878901" not in part
        assert "Siti Aminah" in part


def test_the_day_is_the_office_day_and_yesterday_is_in_wib() -> None:
    start, end = day_window(DAY, "Asia/Jakarta")

    assert (start, end) == (
        datetime(2026, 12, 1, 17, 0, tzinfo=UTC),
        datetime(2026, 12, 2, 17, 0, tzinfo=UTC),
    )
    # 23:30 UTC on 2 December is already 3 December in Porong.
    assert yesterday(datetime(2026, 12, 2, 23, 30, tzinfo=UTC), "Asia/Jakarta") == DAY


def test_the_service_queues_the_digest_once_after_seven(app: App) -> None:
    service = Service(app, app.transport())
    clock = app.clock
    assert isinstance(clock, FixedClock)
    moments = [wib(3, 6, 59), NOW, NOW + timedelta(minutes=1), wib(3, 23)]

    for moment in moments:
        clock.at = moment
        service.digest_if_due()

    with app.sessions() as session:
        rows = session.execute(
            select(OutboxItem.recipients, OutboxItem.status).where(
                OutboxItem.kind == "digest"
            )
        ).all()
    assert rows == [(["camat@porong.example.go.id"], "sent")]
    assert digest_queued(app, "20261202")
    sent = sorted((app.outbox_dir).glob("*.eml"))
    assert len(sent) == 1
    letter = email.message_from_bytes(sent[0].read_bytes(), policy=default)
    assert str(letter["Subject"]) == (
        "Ringkasan harian Layanan Pengaduan Kecamatan Porong: Rabu, 2 Desember 2026"
    )


def test_a_new_installation_sends_no_digest_of_a_day_it_never_saw(
    tmp_path: Path,
) -> None:
    # Installed at 09:00 on 3 December; the first mail comes at 10:00.
    app = App.build(scenario_settings(tmp_path), FixedClock(wib(3, 9)))
    next_morning = wib(3, 7) + timedelta(days=1)
    service = Service(app, app.transport())
    clock = app.clock
    assert isinstance(clock, FixedClock)

    service.digest_if_due()
    with app.sessions.begin() as session:
        add_ticket(session, app.settings, wib(3, 10))
    clock.at = next_morning
    service.digest_if_due()

    with app.sessions() as session:
        ids = session.scalars(
            select(OutboxItem.message_id).where(OutboxItem.kind == "digest")
        ).all()
    assert [i.split(".")[1] for i in ids] == ["20261203"]


def test_in_working_hours_mode_the_digest_says_what_on_time_was_measured_by(
    app: App,
) -> None:
    working = app.settings.model_copy(update={"sla": SlaConfig(mode="working_hours")})

    calendar_text = render_digest(app.renderer, computed(app), app.settings).text
    working_text = render_digest(app.renderer, computed(app), working).text

    # Trial 30: the longer label had pushed its colon out of line.
    assert "  Tepat waktu (1x24 jam)          : 66,7% (2 dari 3)\n" in calendar_text
    assert "  Tepat waktu (24 jam kerja)      : 66,7% (2 dari 3)\n" in working_text


def test_the_cli_prints_the_digest_of_a_given_day(tmp_path: Path) -> None:
    build(tmp_path / "data")
    config = tmp_path / "mailbot.toml"
    config.write_text(
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n{ACCOUNTS}{CHAIN_STAFF_TOML}',
        encoding="utf-8",
    )

    text = mailbot(config, "digest", "--date", "2026-12-02", "--print").stdout
    html = mailbot(config, "digest", "--date", "2026-12-02", "--print", "--html")
    neither = mailbot(config, "digest", check=False)

    assert text.splitlines()[2] == "Rabu, 2 Desember 2026"
    assert "  Diterima                        : 4\n" in text
    assert "  Tepat waktu (1x24 jam)          : 66,7% (2 dari 3)\n" in text
    assert "  Waktu tanggapan terlama         : 2 hari 1 jam\n" in text
    assert html.stdout.startswith("<!DOCTYPE html>")
    assert neither.returncode == 2
    assert "give exactly one of --print and --send" in neither.stderr
