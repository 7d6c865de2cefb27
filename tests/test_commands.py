"""Staff commands: reading #tags from the new text of a reply, and the help table."""

from __future__ import annotations

from mailbot.commands import COMMANDS, find_command, help_rows, read_commands


def _read(text: str) -> list[tuple[str, str]]:
    return [(i.command.name, i.argument) for i in read_commands(text).invocations]


def test_the_text_after_a_tag_runs_to_the_next_tag() -> None:
    text = "#verifikasi\n#tanggapan Lampu sudah diganti.\n\nTerima kasih.\n#status"

    assert _read(text) == [
        ("verifikasi", ""),
        ("tanggapan", "Lampu sudah diganti.\n\nTerima kasih."),
        ("status", ""),
    ]


def test_english_aliases_and_any_case_call_the_same_command() -> None:
    text = "#REPLY sudah\n#Note dicek\n#assign trantib\n#reject bukan wewenang\n#help"

    assert _read(text) == [
        ("tanggapan", "sudah"),
        ("catatan", "dicek"),
        ("teruskan", "trantib"),
        ("tolak", "bukan wewenang"),
        ("bantuan", ""),
    ]


def test_a_tag_inside_a_line_is_text_and_text_before_the_first_tag_is_ignored() -> None:
    text = "Pak, mohon dicek #penting\n  #catatan sudah #tanggapan belum"

    assert _read(text) == [("catatan", "sudah #tanggapan belum")]


def test_a_mistyped_tag_is_answered_with_the_nearest_command() -> None:
    instructions = read_commands("#tanggapn Sudah diperbaiki.\n#stat\n#arsip")

    assert instructions.problems == (
        "Perintah #tanggapn tidak dikenal. Maksud Anda #tanggapan?",
        "Perintah #stat tidak dikenal. Maksud Anda #status?",
        "Perintah #arsip tidak dikenal.",
    )
    assert instructions.invocations == ()


def test_unknown_tags_and_missing_arguments_are_problems() -> None:
    instructions = read_commands("#tutup\n#tolak\n#teruskan\n#catatan ok\n# judul")

    assert instructions.problems == (
        "Perintah #tutup tidak dikenal.",
        "Perintah #tolak perlu ALASAN.",
        "Perintah #teruskan perlu UNIT.",
    )
    assert [i.command.name for i in instructions.invocations] == ["catatan"]


def test_a_colon_after_the_tag_is_not_part_of_the_argument() -> None:
    text = "#Tanggapan: Lampu sudah diganti.\n#teruskan : kesos\n#status:"

    assert _read(text) == [
        ("tanggapan", "Lampu sudah diganti."),
        ("teruskan", "kesos"),
        ("status", ""),
    ]


def test_signature_hashtags_are_neither_commands_nor_text() -> None:
    text = (
        "#tanggapan Lampu sudah diganti.\n\nSalam,\nHendra\n#SidoarjoBersih\n"
        "Seksi Ekbang\n#porong #sidoarjo\n#catatan cek lagi besok"
    )

    instructions = read_commands(text)

    assert instructions.problems == ()
    assert _read(text) == [
        ("tanggapan", "Lampu sudah diganti.\n\nSalam,\nHendra"),
        ("catatan", "cek lagi besok"),
    ]


def test_an_internal_note_under_an_answer_never_joins_the_answer() -> None:
    text = (
        "#tanggapan Lampu sudah diganti.\n\nCatatan internal: pelapor sering "
        "mengadu.\nCek ulang besok.\n#teruskan kesos\nInternal: tiket lama\n"
        "#catatan x\nCATATAN UNTUK INTERNAL\nkirim foto\n"
        "#catatan y\nKegiatan internal desa berjalan."
    )

    assert _read(text) == [
        ("tanggapan", "Lampu sudah diganti."),
        ("catatan", "pelapor sering mengadu.\nCek ulang besok."),
        ("teruskan", "kesos"),
        ("catatan", "tiket lama"),
        ("catatan", "x"),
        ("catatan", "kirim foto"),
        ("catatan", "y\nKegiatan internal desa berjalan."),
    ]


def test_a_bold_or_short_internal_heading_opens_a_note_too() -> None:
    text = (
        "#tanggapan Lampu diganti.\n*Catatan internal:* kerabat kades\n"
        "#catatan a\n**Catatan intern**: rumah di gang buntu\n"
        "#catatan b\n_Internal:_ cek lagi"
    )

    assert _read(text) == [
        ("tanggapan", "Lampu diganti."),
        ("catatan", "kerabat kades"),
        ("catatan", "a"),
        ("catatan", "rumah di gang buntu"),
        ("catatan", "b"),
        ("catatan", "cek lagi"),
    ]


def test_an_nb_internal_line_opens_a_note() -> None:
    # Trial 30: "NB (internal): ..." went to the complainant.
    text = (
        "#tanggapan Berkas sudah selesai.\nNB (internal): berkas sempat hilang\n"
        "#catatan a\nNB internal: cek arsip"
    )

    assert _read(text) == [
        ("tanggapan", "Berkas sudah selesai."),
        ("catatan", "berkas sempat hilang"),
        ("catatan", "a"),
        ("catatan", "cek arsip"),
    ]


def test_an_internal_line_before_any_tag_is_not_a_command() -> None:
    assert _read("Catatan internal: sudah dicek.") == []


def test_a_lone_lower_case_unknown_tag_is_still_a_problem() -> None:
    instructions = read_commands("#tanggapan sudah\n#tutup")

    assert instructions.problems == ("Perintah #tutup tidak dikenal.",)


def test_text_without_tags_gives_nothing() -> None:
    instructions = read_commands("Sudah kami cek, besok diganti.")

    assert (instructions.invocations, instructions.problems) == ((), ())


def test_every_tag_is_unique_across_the_table() -> None:
    tags = [tag for command in COMMANDS for tag in command.tags]

    assert len(tags) == len(set(tags)) == 21
    assert find_command("disposisi") is find_command("teruskan")


def test_help_without_approval_leaves_out_the_approvers_commands() -> None:
    rows = help_rows(approval=False)

    assert [row["usage"] for row in rows] == [
        "#tanggapan TEKS",
        "#catatan TEKS",
        "#teruskan UNIT",
        "#tolak ALASAN",
        "#selesai ALASAN",
        "#verifikasi",
        "#status",
        "#bantuan",
    ]


def test_help_is_generated_from_the_table() -> None:
    rows = help_rows()

    assert [row["usage"] for row in rows] == [
        "#tanggapan TEKS",
        "#catatan TEKS",
        "#teruskan UNIT",
        "#tolak ALASAN",
        "#selesai ALASAN",
        "#verifikasi",
        "#status",
        "#bantuan",
        "#setuju",
        "#revisi CATATAN",
    ]
    assert rows[2] == {
        "usage": "#teruskan UNIT",
        "aliases": "#disposisi, #assign",
        "help": "Pindahkan tiket ke unit lain (kode atau nama unit); "
        "unit itu diberi tahu.",
    }
