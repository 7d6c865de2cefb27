"""Routing: choose the unit (seksi) that handles a new complaint.

Reads the subject and the new text of a complaint (quoted history already removed by
the caller) and the units' keyword lists from the configuration; writes a
``RoutingDecision``. Nothing is stored here.

Rules, in the order they apply:

- Text and keywords are normalised the same way (``mailbot.normalise``). A keyword is
  a phrase of one or more words; it matches a consecutive run of words in which every
  word equals the keyword's word either as written or by its stem. So "banjir" finds
  "kebanjiran", and "perbaikan jalan" finds "diperbaiki jalan".
- Where a matched phrase lies inside a longer matched phrase at the same place, only
  the longer one counts: "blt dana desa" is social aid, not village funds, and
  "e-ktp" does not also count as "ktp".
- A keyword counts once per message, with its weight; if it matches in the subject
  it counts ``SUBJECT_FACTOR`` times its weight, because citizens name the problem in
  the subject and add addresses, landmarks and greetings in the body.
- A unit's score is the sum of its matched keywords. The highest score wins; a tie
  goes to the unit listed first in the configuration. When nothing matches, the
  fallback unit takes the complaint.
- Only the first ``MAX_ROUTED_CHARS`` characters of the body are read, so that a
  pasted document cannot make routing slow.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from mailbot.config import UnitConfig
from mailbot.errors import ConfigError
from mailbot.normalise import NormalisedText, normalise

log = logging.getLogger(__name__)

SUBJECT_FACTOR = 2.0
MAX_ROUTED_CHARS = 20_000


@dataclass(frozen=True)
class RoutingDecision:
    """Where a complaint goes and why.

    ``matched`` lists the winning unit's keywords in configuration order;
    ``scores`` holds every unit that scored, in configuration order. A fallback
    decision has no matches, a score of 0 and empty scores.
    """

    unit: str
    matched: tuple[str, ...]
    score: float
    scores: Mapping[str, float]
    fallback: bool


@dataclass(frozen=True, slots=True, eq=False)
class _Keyword:
    unit: str
    phrase: str
    weight: float
    order: int
    words: NormalisedText


# Where a keyword was found: (first word, word after the last, keyword).
_Hit = tuple[int, int, _Keyword]


class Router:
    """Keyword router over the configured units, compiled once."""

    def __init__(self, units: Sequence[UnitConfig]) -> None:
        self._codes = tuple(unit.code for unit in units)
        self._fallback = _fallback_code(units)
        self._keywords = tuple(_compile(units))
        self._by_surface: dict[str, list[_Keyword]] = {}
        self._by_stem: dict[str, list[_Keyword]] = {}
        for keyword in self._keywords:
            first = keyword.words
            self._by_surface.setdefault(first.surfaces[0], []).append(keyword)
            self._by_stem.setdefault(first.stems[0], []).append(keyword)

    def route(self, subject: str, body: str) -> RoutingDecision:
        """Choose the unit for a complaint with this subject and new text."""
        in_subject = self._matches(normalise(subject))
        in_body = self._matches(normalise(body[:MAX_ROUTED_CHARS]))

        totals = dict.fromkeys(self._codes, 0.0)
        matched = sorted(in_subject | in_body, key=lambda keyword: keyword.order)
        for keyword in matched:
            factor = SUBJECT_FACTOR if keyword in in_subject else 1.0
            totals[keyword.unit] += keyword.weight * factor

        decision = self._decide(totals, matched)
        log.debug(
            "routed to %s (score %.1f, %d keywords)",
            decision.unit,
            decision.score,
            len(decision.matched),
        )
        return decision

    def _decide(
        self, totals: dict[str, float], matched: list[_Keyword]
    ) -> RoutingDecision:
        scores = {code: score for code, score in totals.items() if score > 0}
        if not scores:
            return RoutingDecision(
                self._fallback, (), 0.0, MappingProxyType({}), fallback=True
            )

        # max() keeps the first of equal scores, and dicts keep config order.
        unit = max(scores, key=scores.__getitem__)
        phrases = tuple(k.phrase for k in matched if k.unit == unit)
        return RoutingDecision(
            unit, phrases, scores[unit], MappingProxyType(scores), fallback=False
        )

    def _matches(self, text: NormalisedText) -> set[_Keyword]:
        hits = list(self._hits(text))
        phrases = [(first, end) for first, end, _ in hits if end - first > 1]
        return {
            keyword
            for first, end, keyword in hits
            if not any(
                a <= first and end <= b and b - a > end - first for a, b in phrases
            )
        }

    def _hits(self, text: NormalisedText) -> Iterator[_Hit]:
        pairs = zip(text.surfaces, text.stems, strict=True)
        for first, (surface, stemmed) in enumerate(pairs):
            for keyword in self._by_surface.get(surface, ()):
                if _rest_matches(keyword.words, text, first):
                    yield first, first + len(keyword.words.surfaces), keyword
            for keyword in self._by_stem.get(stemmed, ()):
                # Already tried above when the first word matched as written.
                if keyword.words.surfaces[0] == surface:
                    continue
                if _rest_matches(keyword.words, text, first):
                    yield first, first + len(keyword.words.surfaces), keyword


def _rest_matches(phrase: NormalisedText, text: NormalisedText, first: int) -> bool:
    """True when the phrase's words after its first match the text from ``first``."""
    if first + len(phrase.surfaces) > len(text.surfaces):
        return False
    for i in range(1, len(phrase.surfaces)):
        surface, stemmed = text.surfaces[first + i], text.stems[first + i]
        if surface != phrase.surfaces[i] and stemmed != phrase.stems[i]:
            return False
    return True


def _fallback_code(units: Sequence[UnitConfig]) -> str:
    fallbacks = [unit.code for unit in units if unit.fallback]
    if len(fallbacks) != 1:
        raise ConfigError(
            f"units: exactly one unit needs fallback = true, found {len(fallbacks)}"
        )
    return fallbacks[0]


def _compile(units: Sequence[UnitConfig]) -> Iterator[_Keyword]:
    order = 0
    for unit in units:
        for keyword in unit.keywords:
            words = normalise(keyword.phrase)
            if not words.surfaces:
                raise ConfigError(
                    f"units.{unit.code}.keywords: {keyword.phrase!r} has no words"
                )
            yield _Keyword(unit.code, keyword.phrase, keyword.weight, order, words)
            order += 1
