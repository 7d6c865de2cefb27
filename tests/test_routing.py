"""Routing: complaints in real wording reach the right unit, and the rules hold."""

from __future__ import annotations

import email
import json
import subprocess
import sys
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from inscriptis import get_text

from mailbot.config import Keyword, UnitConfig, embedded_defaults
from mailbot.errors import ConfigError
from mailbot.normalise import normalise, stem, words
from mailbot.routing import MAX_ROUTED_CHARS, SUBJECT_FACTOR, Router

MAKE_CORPUS = Path(__file__).parents[2] / "shared" / "bench" / "make_corpus.py"

# The unit each synthetic corpus topic belongs to.
TOPIC_UNITS = {
    "lampu_jalan": "ekbang",
    "banjir_drainase": "ekbang",
    "sampah": "ekbang",
    "jalan_rusak": "ekbang",
    "ektp_kk": "pelayanan",
    "surat_tanah": "pemerintahan",
    "kebisingan": "trantib",
    "ketertiban": "trantib",
    "bansos": "kesos",
    "puskesmas": "kesos",
}

COMPLAINTS = [
    # found by a new user's trial: a disturbed person, a stray dog
    ("Ada orang gila mengamuk di pasar", "kesos", ("orang gila",)),
    ("Anjing liar menggigit anak kecil di gang kami", "trantib", ("anjing liar",)),
    # ekbang: roads, lights, drainage, flooding, garbage, markets
    ("jln di depan balai desa berlubang gede banget", "ekbang", ("berlubang",)),
    ("lampu PJU mati sudah seminggu", "ekbang", ("pju", "lampu")),
    ("rumah kami kebanjiran", "ekbang", ("banjir",)),
    (
        "Sudah 2 minggu lampu jalan di Jl. Raya Porong padam",
        "ekbang",
        ("lampu jalan", "padam"),
    ),
    (
        "Penerangan di gang kami kurang, malam gelap gulita",
        "ekbang",
        ("gelap",),
    ),
    (
        "Selokan depan rumah mampet gak pernah dibersihkan",
        "ekbang",
        ("selokan", "mampet", "kebersihan"),
    ),
    (
        "Kalau hujan sebentar saja jalan tergenang sampai selutut",
        "ekbang",
        ("genangan", "hujan"),
    ),
    (
        "Sampah di TPS liar dekat sungai menumpuk dan bau",
        "ekbang",
        ("sungai", "sampah", "tps", "menumpuk", "bau"),
    ),
    ("Gorong2 depan rumah mampet", "ekbang", ("gorong-gorong", "mampet")),
    (
        "Sdh lapor ke desa tp blm ada tindak lanjut soal got mampet",
        "ekbang",
        ("got", "mampet"),
    ),
    ("Jembatan penghubung dua dusun ambrol", "ekbang", ("ambrol", "jembatan")),
    ("Pasar Porong becek dan kumuh", "ekbang", ("becek", "pasar")),
    ("Bantuan modal UMKM tidak merata", "ekbang", ("umkm",)),
    ("Air PDAM tidak mengalir sudah 3 hari", "ekbang", ("pdam",)),
    (
        "Warga mengeluhkan bau busuk dari limbah pabrik",
        "ekbang",
        ("bau", "busuk", "limbah"),
    ),
    # pelayanan: civil registry and letters
    ("anak saya belum dapat akta kelahiran", "pelayanan", ("akta kelahiran",)),
    ("KTP saya hilang, bagaimana cara mengurus yang baru?", "pelayanan", ("ktp",)),
    (
        "Sudah 3 bulan e-KTP saya belum dicetak katanya blanko habis",
        "pelayanan",
        ("e-ktp", "blanko"),
    ),
    (
        "Mau tanya syarat pindah domisili ke Surabaya",
        "pelayanan",
        ("pindah domisili", "persyaratan"),
    ),
    ("Legalisir KK di kecamatan kok lama sekali", "pelayanan", ("kk", "legalisir")),
    (
        "Antrean di loket pelayanan kecamatan panjang, cuma 1 petugas",
        "pelayanan",
        ("antrean", "loket"),
    ),
    (
        "Akte kematian bapak saya salah tulis tanggal",
        "pelayanan",
        ("salah tulis", "akta kematian"),
    ),
    ("KIA anak saya belum jadi", "pelayanan", ("kia",)),
    # umum: staff conduct, opening hours, website
    (
        "ada pungli waktu urus surat di kantor kecamatan",
        "umum",
        ("pungli", "kantor kecamatan"),
    ),
    (
        "Saya dimintai uang 50 ribu saat mengurus e-KTP di kecamatan",
        "umum",
        ("dimintai uang",),
    ),
    (
        "Pegawai kecamatan main hp waktu jam pelayanan",
        "umum",
        ("pegawai kecamatan", "main hp", "jam pelayanan"),
    ),
    (
        "Saya datang jam 9 kantor kecamatan masih tutup",
        "umum",
        ("masih tutup", "kantor kecamatan"),
    ),
    ("Website kecamatan porong error terus", "umum", ("website",)),
    (
        "Petugas di loket kecamatan judes dan tidak ramah",
        "umum",
        ("tidak ramah", "judes"),
    ),
    # pemerintahan: land, tax, elections, RT/RW
    (
        "Pengukuran tanah untuk PTSL belum dilakukan",
        "pemerintahan",
        ("ptsl", "pengukuran tanah"),
    ),
    (
        "Tanah warisan orang tua kami disengketakan saudara",
        "pemerintahan",
        ("sengketa", "tanah", "warisan"),
    ),
    (
        "Letter C tanah kakek saya hilang di buku desa",
        "pemerintahan",
        ("letter c", "tanah"),
    ),
    (
        "Tagihan PBB saya salah, luas tanah tidak sesuai",
        "pemerintahan",
        ("tanah", "pbb"),
    ),
    (
        "Ada dugaan politik uang menjelang pilkades",
        "pemerintahan",
        ("pilkades", "politik uang"),
    ),
    (
        "Warga minta pembentukan RT baru di perumahan kami",
        "pemerintahan",
        ("pembentukan rt",),
    ),
    # pmd: village government
    (
        "kades tidak transparan soal dana desa",
        "pmd",
        ("kades", "dana desa", "transparan"),
    ),
    (
        "Kepala desa jarang ada di kantor desa",
        "pmd",
        ("kepala desa", "kantor desa"),
    ),
    ("BUMDes tidak ada laporan keuangannya", "pmd", ("bumdes",)),
    ("Warga tidak pernah diundang musrenbangdes", "pmd", ("musrenbangdes",)),
    (
        "Kades minta uang 2 juta untuk tanda tangan surat jual beli tanah",
        "pmd",
        ("kades",),
    ),
    # kesos: social aid, health, scholarships, housing
    ("Ibu saya lansia belum pernah dapat bansos", "kesos", ("bansos", "lansia")),
    ("PKH saya dicoret tanpa alasan", "kesos", ("pkh",)),
    (
        "Kartu KIS saya tidak aktif waktu mau berobat ke puskesmas",
        "kesos",
        ("kis", "puskesmas", "obat"),
    ),
    (
        "Anak saya kena DBD, mohon fogging di lingkungan kami",
        "kesos",
        ("fogging", "dbd"),
    ),
    (
        "Rumah tetangga saya hampir roboh, mohon dibantu program RTLH",
        "kesos",
        ("rtlh",),
    ),
    (
        "Anak saya tidak dapat beasiswa KIP padahal keluarga tidak mampu",
        "kesos",
        ("beasiswa", "kip"),
    ),
    ("Dana BLT dana desa belum cair", "kesos", ("blt dana desa",)),
    # trantib: public order
    ("tetangga karaoke sampai jam 2 malam", "trantib", ("karaoke",)),
    (
        "Tetangga saya menyalakan sound horeg sampai tengah malam",
        "trantib",
        ("sound horeg", "tengah malam"),
    ),
    (
        "Anak muda nongkrong mabuk-mabukan tiap malam di pos kamling",
        "trantib",
        ("mabuk", "kamling"),
    ),
    (
        "Tiap malam minggu balap liar, knalpot brong berisik sekali",
        "trantib",
        ("berisik", "balap liar", "knalpot", "brong"),
    ),
    (
        "Tukang parkir liar memungut tarif Rp 5.000 di depan minimarket",
        "trantib",
        ("parkir liar", "tukang parkir"),
    ),
    ("Motor saya hilang dicuri di depan rumah", "trantib", ("curi",)),
    (
        "Banyak PKL berjualan di trotoar depan pasar",
        "trantib",
        ("pkl", "berjualan"),
    ),
    ("Ada tawuran pelajar di dekat jembatan", "trantib", ("tawuran",)),
    (
        "Suara mesin penggilingan padi mengganggu warga 24 jam",
        "trantib",
        ("suara", "mengganggu"),
    ),
    # context that names a unit's words without being about them
    (
        "Jalan di depan rumah saya berlubang. Terlampir foto KTP saya.",
        "ekbang",
        ("berlubang",),
    ),
    (
        "Jalan berlubang, sudah lapor kades tapi tidak ada tindakan",
        "ekbang",
        ("jalan berlubang",),
    ),
    (
        "Saya lapor ke kades soal jalan, malah dimarahi kades",
        "pmd",
        ("kades", "lapor ke kades"),
    ),
]


@pytest.fixture(scope="module")
def porong() -> Router:
    """The router over the office's real keyword lists."""
    return Router(embedded_defaults().units)


def unit(
    code: str, *keywords: str | tuple[str, float], fallback: bool = False
) -> UnitConfig:
    """A unit for rule tests; a keyword is a phrase or a (phrase, weight) pair."""
    parsed = tuple(
        Keyword(phrase=k) if isinstance(k, str) else Keyword(phrase=k[0], weight=k[1])
        for k in keywords
    )
    return UnitConfig(code=code, name=code, keywords=parsed, fallback=fallback)


@pytest.mark.parametrize(("text", "expected_unit", "expected_matched"), COMPLAINTS)
def test_complaint_reaches_its_unit(
    porong: Router, text: str, expected_unit: str, expected_matched: tuple[str, ...]
) -> None:
    decision = porong.route("", text)

    assert (decision.unit, decision.matched) == (expected_unit, expected_matched)
    assert decision.fallback is False


def test_complaint_sentences_are_many() -> None:
    assert len(COMPLAINTS) >= 40
    assert {expected for _, expected, _ in COMPLAINTS} == {
        u.code for u in embedded_defaults().units
    }


@pytest.mark.parametrize(
    ("text", "expected_matched"),
    [
        ("Mohon perbaikan jalan di Dusun Krajan", ("perbaikan jalan",)),
        ("Kerusakan jalan di Desa Mindi makin parah", ("kerusakan jalan",)),
        (
            "Mohon segera diperbaiki jalan menuju pasar",
            ("perbaikan jalan", "pasar"),
        ),
        (
            "Lampu penerangan jalan umum di gang kami padam",
            ("penerangan jalan", "lampu penerangan", "padam"),
        ),
        (
            "Jalan diperbaiki asal-asalan, baru sebulan sudah berlubang lagi",
            ("berlubang",),
        ),
    ],
)
def test_over_stemmed_words_still_reach_public_works(
    porong: Router, text: str, expected_matched: tuple[str, ...]
) -> None:
    decision = porong.route("", text)

    assert (decision.unit, decision.matched) == ("ekbang", expected_matched)


def test_over_stemming_is_real_and_good_words_route_nowhere(porong: Router) -> None:
    assert [stem(w) for w in ("perbaikan", "penerangan", "kerusakan")] == [
        "baik",
        "terang",
        "rusa",
    ]

    decision = porong.route("", "Pelayanannya baik sekali dan ruangannya terang")

    assert (decision.unit, decision.fallback) == ("umum", True)


def test_address_line_alone_goes_to_fallback(porong: Router) -> None:
    decision = porong.route("", "RT 03 RW 02 Desa Kesambi, Kecamatan Porong")

    assert decision.unit == "umum"
    assert decision.matched == ()
    assert decision.score == 0.0
    assert dict(decision.scores) == {}
    assert decision.fallback is True


def test_greeting_and_signature_alone_go_to_fallback(porong: Router) -> None:
    body = (
        "Assalamualaikum wr. wb.\nYth. Bapak Camat Porong,\n\n"
        "Mohon bantuannya. Terima kasih.\n\nHormat saya,\nSiti Aminah\n"
        "Jl. Raya Porong No. 12, Kel. Porong, Kec. Porong\nNIK 3515012305878901"
    )

    decision = porong.route("Mohon bantuan", body)

    assert (decision.unit, decision.fallback) == ("umum", True)


def test_ties_go_to_the_unit_listed_first() -> None:
    units = [
        unit("umum", fallback=True),
        unit("sampah", ("sampah", 2.0)),
        unit("banjir", ("banjir", 2.0)),
    ]

    first = Router(units).route("", "sampah hanyut waktu banjir")
    reversed_order = Router([units[0], units[2], units[1]]).route(
        "", "sampah hanyut waktu banjir"
    )

    assert (first.unit, dict(first.scores)) == (
        "sampah",
        {"sampah": 2.0, "banjir": 2.0},
    )
    assert reversed_order.unit == "banjir"


def test_porong_tie_between_pungli_and_ektp_goes_to_umum(porong: Router) -> None:
    decision = porong.route("", "pungli e-KTP")

    assert dict(decision.scores) == {"umum": 3.0, "pelayanan": 3.0}
    assert decision.unit == "umum"


def test_subject_match_counts_double() -> None:
    router = Router(
        [unit("umum", fallback=True), unit("lampu", "lampu"), unit("got", ("got", 1.5))]
    )

    in_subject = router.route("Lampu mati", "dan got mampet")
    in_body = router.route("Pengaduan", "lampu mati dan got mampet")

    assert SUBJECT_FACTOR == 2.0
    assert (in_subject.unit, dict(in_subject.scores)) == (
        "lampu",
        {"lampu": 2.0, "got": 1.5},
    )
    assert (in_body.unit, dict(in_body.scores)) == ("got", {"lampu": 1.0, "got": 1.5})


def test_subject_decides_for_the_porong_lists(porong: Router) -> None:
    body = "Saya sudah lapor ke RT. Jalan di depan rumah juga becek."

    decision = porong.route("Lampu PJU mati", body)

    assert (decision.unit, decision.matched) == ("ekbang", ("becek", "pju", "lampu"))
    assert decision.score == 2.0 + 2 * 3.0 + 2 * 1.5


def test_keyword_counts_once_per_message() -> None:
    router = Router([unit("umum", fallback=True), unit("ekbang", ("sampah", 3.0))])

    decision = router.route("sampah", "sampah, sampahnya, persampahan, sampah lagi")

    assert (decision.matched, decision.score) == (("sampah",), 6.0)


def test_phrase_inside_longer_match_does_not_count(porong: Router) -> None:
    decision = porong.route("", "Penyaluran BLT dana desa tidak adil")

    assert dict(decision.scores) == {"kesos": 3.5}
    assert decision.matched == ("blt dana desa",)


def test_phrase_needs_consecutive_words() -> None:
    router = Router([unit("umum", fallback=True), unit("ekbang", "lampu jalan")])

    apart = router.route("", "lampu di jalan mati")
    together = router.route("", "lampu-lampu jalan mati")

    assert apart.fallback is True
    assert (together.unit, together.matched) == ("ekbang", ("lampu jalan",))


def test_matched_keywords_keep_config_order(porong: Router) -> None:
    decision = porong.route("", "mampet, meluap, selokan")

    assert decision.matched == ("selokan", "mampet", "meluap")


def test_scores_cannot_be_changed(porong: Router) -> None:
    decision = porong.route("", "sampah menumpuk")

    with pytest.raises(TypeError):
        decision.scores["umum"] = 99.0  # type: ignore[index]


def test_only_the_start_of_a_long_body_is_read() -> None:
    router = Router([unit("umum", fallback=True), unit("ekbang", "sampah")])
    padding = "x" * (MAX_ROUTED_CHARS - 8)

    inside = router.route("", padding + " sampah")
    outside = router.route("", padding + "        sampah")

    assert inside.unit == "ekbang"
    assert outside.fallback is True


def test_router_needs_exactly_one_fallback() -> None:
    with pytest.raises(ConfigError) as raised:
        Router([unit("a", "x"), unit("b", "y")])

    assert str(raised.value) == (
        "units: exactly one unit needs fallback = true, found 0"
    )


def test_keyword_without_words_is_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        Router([unit("umum", fallback=True), unit("ekbang", "2026")])

    assert str(raised.value) == "units.ekbang.keywords: '2026' has no words"


def test_porong_keywords_do_not_repeat_after_stemming() -> None:
    seen: dict[tuple[str, ...], str] = {}
    repeated = []
    for config in embedded_defaults().units:
        for keyword in config.keywords:
            stems = normalise(keyword.phrase).stems
            if stems in seen:
                repeated.append((keyword.phrase, seen[stems]))
            seen[stems] = keyword.phrase

    assert repeated == []


def test_porong_keywords_avoid_address_and_greeting_words() -> None:
    everywhere = {
        "desa", "kelurahan", "kecamatan", "dusun", "rt", "rw", "jalan", "camat",
        "warga", "rumah", "mohon", "bantuan", "layanan", "pelayanan", "nik",
        "porong", "sidoarjo", "kantor", "surat", "gang", "perumahan",
    }  # fmt: skip
    stems_everywhere = {stem(word) for word in everywhere}

    single = [
        keyword.phrase
        for config in embedded_defaults().units
        for keyword in config.keywords
        if len(normalise(keyword.phrase).surfaces) == 1
    ]

    assert [p for p in single if normalise(p).stems[0] in stems_everywhere] == []


def test_words_repair_informal_spelling() -> None:
    text = "Jln. Raya Porong No.5: gak ada lampu2, sdh lapor ke Kel. & Ds."

    assert words(text) == [
        "jalan", "raya", "porong", "no", "tidak", "ada", "lampu", "lampu",
        "sudah", "lapor", "ke", "kelurahan", "desa",
    ]  # fmt: skip


def test_normalise_keeps_surfaces_and_stems_side_by_side() -> None:
    text = normalise("Kebanjiran, e-KTP & eKTP, mampet!")

    assert text.surfaces == ("kebanjiran", "e", "ktp", "e", "ktp", "mampet")
    assert text.stems == ("banjir", "e", "ktp", "e", "ktp", "mampet")


def test_very_long_tokens_are_not_stemmed() -> None:
    blob = "aGVsbG8" * 10

    assert stem(blob.lower()) == blob.lower()


def body_text(message: EmailMessage) -> str:
    """The readable text of a corpus message, HTML turned into text."""
    part = message.get_body(preferencelist=("plain", "html"))
    assert isinstance(part, EmailMessage)
    content = str(part.get_content())
    if part.get_content_type() == "text/html":
        return str(get_text(content))
    return content


@pytest.mark.skipif(not MAKE_CORPUS.is_file(), reason="shared corpus tool not here")
def test_synthetic_corpus_complaints_reach_their_topic_unit(
    porong: Router, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run(
        [sys.executable, str(MAKE_CORPUS), "--count", "400", "--out", str(corpus),
         "--format", "eml", "--seed", "7"],
        check=True, capture_output=True,
    )  # fmt: skip
    manifest = corpus.parent / "corpus.manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text("utf-8").splitlines()]
    new = [row for row in rows if row["kind"] == "new"]

    wrong = []
    for row in new:
        raw = (corpus / row["file"]).read_bytes()
        message = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        decision = porong.route(str(message["subject"]), body_text(message))
        if decision.unit != TOPIC_UNITS[row["topic"]]:
            wrong.append((row["file"], row["topic"], decision.unit))

    assert len(new) > 250
    assert wrong == []
