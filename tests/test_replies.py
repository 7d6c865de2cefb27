"""Reply text: the new part of replies as real mail clients quote them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailbot.parsing import parse_message
from mailbot.replies import new_text, without_sign_off

DATA = Path(__file__).parent / "data"
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)


def _new_text_of(name: str) -> str:
    mail = parse_message((DATA / name).read_bytes(), now=NOW)
    return new_text(mail.text)


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "replies-gmail-indonesian.eml",
            "#tanggapan\n"
            "Lampu PJU di Jl. Raya Porong sudah diganti oleh petugas pada Rabu pagi.\n"
            "Terima kasih atas laporannya.",
        ),
        (
            "replies-outlook-indonesian.eml",
            "#tanggapan Petugas sudah memeriksa lokasi dan lampu akan diganti besok."
            "\n\nSalam,\nHendra",
        ),
        (
            "replies-iphone-indonesian.eml",
            "Maaf Pak, lampunya mati lagi tadi malam.",
        ),
        (
            "replies-android-english.eml",
            "#catatan sudah dicek ke lokasi, kabel putus\n"
            "- perlu tangga tinggi\n"
            "- koordinasi dengan PLN",
        ),
        (
            "replies-yahoo-indonesian.eml",
            "Terima kasih, KTP saya sudah jadi.\nSaya ambil hari Jumat.",
        ),
        (
            "replies-gmail-html-only.eml",
            "#tanggapan\nLampu sudah menyala kembali sejak pukul 21.00.\n\n"
            "Salam,\nHendra",
        ),
        (
            "replies-outlook-english.eml",
            "#teruskan trantib\nIni urusan ketertiban, bukan ekbang.",
        ),
    ],
)
def test_only_the_new_text_is_kept(fixture: str, expected: str) -> None:
    text = _new_text_of(fixture)

    assert text == expected


def test_text_without_history_is_kept_whole() -> None:
    text = "Lampu sudah menyala.\n\nTerima kasih."

    assert new_text(text) == "Lampu sudah menyala.\n\nTerima kasih."


def test_inline_quotes_are_dropped_and_own_lines_kept() -> None:
    text = "> Apakah sudah diperbaiki?\nSudah, kemarin sore.\n> Kapan?\nJam 4."

    assert new_text(text) == "Sudah, kemarin sore.\nJam 4."


def test_a_reply_that_is_only_quotes_is_empty() -> None:
    text = "On Wed, 2 Dec 2026 at 08:01 Kecamatan <a@b.c> wrote:\n> lama"

    assert new_text(text) == ""


def test_english_gmail_signature_and_attribution() -> None:
    text = (
        "Noted, thanks.\n\n-- \nHendra\n\n"
        "On Wed, Dec 2, 2026 at 8:01 AM Layanan Pengaduan <porong@sidoarjokab.go.id>"
        " wrote:\n> old"
    )

    assert new_text(text) == "Noted, thanks."


def test_apple_mail_english_attribution() -> None:
    text = (
        "Siap, besok dicek.\n\n"
        "> On 2 Dec 2026, at 08:01, Layanan Pengaduan <porong@sidoarjokab.go.id>"
        " wrote:\n>\n> PENGADUAN BARU"
    )

    assert new_text(text) == "Siap, besok dicek."


def test_a_bottom_posted_reply_keeps_the_text_below_the_quote() -> None:
    text = (
        "On 02/12/2026 08.01, Layanan Pengaduan wrote:\n"
        "> Apakah lampu sudah menyala?\n"
        "\n"
        "Belum, masih mati.\n"
    )

    assert new_text(text) == "Belum, masih mati."


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "Lampu sudah diganti.\n\nSalam,\nBambang S.\nStaf Seksi Trantib\n"
            "HP 0812-3456-7890",
            "Lampu sudah diganti.",
        ),
        (
            "Bukan wewenang kecamatan.\nHormat kami,\nKasubag Umum",
            "Bukan wewenang kecamatan.",
        ),
        ("Lampu sudah diganti.\nTerima kasih.", "Lampu sudah diganti.\nTerima kasih."),
        ("Salam\nKasubag Umum", "Salam\nKasubag Umum"),
        (
            "Sudah diganti.\n\nSalam,\nHendra\n\nNB: kabel juga diganti oleh PLN pada "
            "hari Senin pagi sesuai jadwal pemeliharaan",
            "Sudah diganti.\n\nSalam,\nHendra\n\nNB: kabel juga diganti oleh PLN pada "
            "hari Senin pagi sesuai jadwal pemeliharaan",
        ),
    ],
)
def test_a_staff_sign_off_is_cut_after_its_closing_line(text: str, kept: str) -> None:
    assert without_sign_off(text) == kept
