"""Indonesian text normalisation for keyword routing.

Reads free text (a subject or a complaint body) and writes a ``NormalisedText``: two
parallel token tuples, the surface words after lower-casing and spelling repair, and
their Sastrawi stems. Routing matches keywords against both, because Sastrawi
over-stems some words (perbaikan -> baik, penerangan -> terang) and passes informal
ones through unchanged (mampet, gak, jln).

Digits and punctuation are noise here: house numbers, RT/RW numbers and NIKs carry no
topic. The Indonesian reduplication shorthand ``lampu2`` is expanded to ``lampu
lampu``; a hyphen splits words, so ``e-KTP`` becomes the two tokens ``e ktp``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Protocol

from Sastrawi.Stemmer.StemmerFactory import StemmerFactory

log = logging.getLogger(__name__)

# Longer "words" are base64 runs, URLs or keyboard mash; stemming them costs time.
MAX_STEMMED_LENGTH = 30

_WORD = re.compile(r"[a-z]+")
_REDUPLICATION = re.compile(r"\b([a-z]{2,})2\b")

# Informal spellings and abbreviations seen in citizens' mail, mapped to the word the
# keyword lists use. A value may hold several words.
SPELLINGS: dict[str, str] = {
    "jl": "jalan",
    "jln": "jalan",
    "gak": "tidak",
    "ga": "tidak",
    "gk": "tidak",
    "nggak": "tidak",
    "ngga": "tidak",
    "enggak": "tidak",
    "engga": "tidak",
    "ndak": "tidak",
    "kagak": "tidak",
    "tdk": "tidak",
    "sdh": "sudah",
    "udah": "sudah",
    "udh": "sudah",
    "blm": "belum",
    "belom": "belum",
    "yg": "yang",
    "dgn": "dengan",
    "dg": "dengan",
    "utk": "untuk",
    "krn": "karena",
    "karna": "karena",
    "tsb": "tersebut",
    "skrg": "sekarang",
    "sy": "saya",
    "bpk": "bapak",
    "kel": "kelurahan",
    "ds": "desa",
    "dsn": "dusun",
    "kec": "kecamatan",
    "kab": "kabupaten",
    "gg": "gang",
    "perum": "perumahan",
    "gede": "besar",
    "banget": "sangat",
    "bgt": "sangat",
    "ngurus": "mengurus",
    "bikin": "membuat",
    "akte": "akta",
    "antrian": "antrean",
    "blangko": "blanko",
    "ektp": "e ktp",
    "ktpel": "ktp el",
    "kepdes": "kades",
    "apbdesa": "apbdes",
    "bumdesa": "bumdes",
    "lpju": "pju",
    "web": "website",
    "ig": "instagram",
    "fb": "facebook",
    "foging": "fogging",
    "fotocopy": "fotokopi",
    "fotocopi": "fotokopi",
    "fc": "fotokopi",
}


class Stemmer(Protocol):
    """The part of Sastrawi's stemmer that normalisation uses."""

    def stem(self, text: str) -> str:
        """The root of an Indonesian word."""
        ...


@dataclass(frozen=True, slots=True)
class NormalisedText:
    """Surface words and their stems, position by position."""

    surfaces: tuple[str, ...]
    stems: tuple[str, ...]


@cache
def _stemmer() -> Stemmer:
    stemmer: Stemmer = StemmerFactory().create_stemmer()
    return stemmer


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """The Sastrawi stem of one lower-case word, cached."""
    if len(word) > MAX_STEMMED_LENGTH:
        return word
    return _stemmer().stem(word) or word


def words(text: str) -> list[str]:
    """Lower-case words of ``text`` with informal spellings repaired."""
    lowered = _REDUPLICATION.sub(r"\1 \1", text.lower())

    result: list[str] = []
    for word in _WORD.findall(lowered):
        spelled = SPELLINGS.get(word)
        if spelled is None:
            result.append(word)
        else:
            result.extend(spelled.split())
    return result


def normalise(text: str) -> NormalisedText:
    """Normalise ``text`` into surface words and their stems."""
    surfaces = tuple(words(text))
    return NormalisedText(surfaces, tuple(stem(word) for word in surfaces))
