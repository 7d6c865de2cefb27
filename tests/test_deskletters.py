"""Desk letters: the final response and the rejection as the complainant reads them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from mailbot.rendering import Renderer, default_templates_dir

OFFICE = {
    "name": "Kecamatan Porong",
    "address": "Jl. Bhayangkari No. 1, Porong, Sidoarjo, Jawa Timur",
    "phone": "(031) 8851003",
    "email": "porong@sidoarjokab.go.id",
    "website": "https://kecporong.sidoarjokab.go.id",
}


def _fields(**extra: Any) -> dict[str, Any]:
    return {
        "office": OFFICE,
        "reference": "PRG-2026-000123-4",
        "complainant_name": "Budi Santoso",
        "subject": "Lampu PJU mati",
        "received_at": datetime(2026, 12, 1, 12, 2, tzinfo=UTC),
        "due_at": datetime(2026, 12, 2, 12, 2, tzinfo=UTC),
        "unit_name": "Seksi Perekonomian dan Pembangunan",
        "unit_code": "ekbang",
        "identity_missing": False,
        "inbox_address": "porong@sidoarjokab.go.id",
        "reopen_days": 14,
        **extra,
    }


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(default_templates_dir())


def test_final_response_text(renderer: Renderer) -> None:
    fields = _fields(
        response="Lampu sudah diganti <hari ini>.",
        answered_at=datetime(2026, 12, 2, 1, 0, tzinfo=UTC),
    )

    rendered = renderer.render("citizen/final_response", fields)

    lines = rendered.text.splitlines()
    assert lines[:14] == [
        "Yth. Bapak/Ibu Budi Santoso,",
        "",
        "Berikut tanggapan Kecamatan Porong atas pengaduan Bapak/Ibu.",
        "",
        "Nomor pengaduan : PRG-2026-000123-4",
        "Perihal         : Lampu PJU mati",
        "Diterima        : Selasa, 1 Desember 2026 pukul 19.02 WIB",
        "Ditangani oleh  : Seksi Perekonomian dan Pembangunan",
        "Ditanggapi      : Rabu, 2 Desember 2026 pukul 08.00 WIB",
        "",
        "Tanggapan:",
        "-" * 60,
        "Lampu sudah diganti <hari ini>.",
        "-" * 60,
    ]
    assert "(ke porong@sidoarjokab.go.id) dalam 14 hari dengan tetap" in lines
    assert (
        "Bapak/Ibu juga dapat menyampaikan pengaduan lanjutan melalui SP4N-LAPOR!"
        in (lines)
    )
    assert "Lampu sudah diganti &lt;hari ini&gt;." in rendered.html


def test_rejection_text(renderer: Renderer) -> None:
    fields = _fields(
        reason="Jaringan listrik rumah adalah wewenang PLN.",
        rejected_at=datetime(2026, 12, 2, 1, 0, tzinfo=UTC),
    )

    rendered = renderer.render("citizen/rejection", fields)

    lines = rendered.text.splitlines()
    assert lines[9:15] == [
        "Alasan:",
        "-" * 60,
        "Jaringan listrik rumah adalah wewenang PLN.",
        "-" * 60,
        "",
        "Bapak/Ibu dapat menyampaikan pengaduan ini kepada instansi yang berwenang",
    ]
    assert (
        "melalui SP4N-LAPOR! di https://www.lapor.go.id; laporan di sana diteruskan"
        in (lines)
    )
