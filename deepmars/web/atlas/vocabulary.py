"""Free text -> classes and FTS5 terms, and suggestions for words that match nothing.

"crater", "craters" or "impact crater" name the class crater (its name, or a synonym from
conf/atlas/synonyms.yaml; a trailing plural "s" is ignored), and become a class filter: the same
rows as ticking the class, through the class index. Other words search file paths, source image
ids, instruments and stored metadata through FTS5, as prefixes ("0003ML" finds
0003ML0000000110100031E01_DRCL.JPG). A word that is neither gets the closest class names and
synonyms as suggestions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+", re.UNICODE)  # what FTS5's unicode61 tokenizer calls a token
MAX_PHRASE_WORDS = 4
MAX_WORDS = 12


def _norm(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _key(words: Iterable[str]) -> tuple[str, ...]:
    return tuple(_norm(w) for w in words)


@dataclass(frozen=True)
class ParsedText:
    classes: tuple[str, ...]  # classes the text names
    words: tuple[str, ...]  # the words left for FTS5
    suggestions: tuple[str, ...]  # closest class names / synonyms for words that name no class

    @property
    def fts_query(self) -> str | None:
        """An FTS5 MATCH expression: every word as a quoted prefix (no FTS syntax from the user)."""
        return " AND ".join(f'"{w}"*' for w in self.words) or None


class Vocabulary:
    """Class names of the catalog's models plus synonyms, matched word by word."""

    def __init__(self, classes: Iterable[str], synonyms: Mapping[str, Iterable[str]]):
        self.phrases: dict[tuple[str, ...], str] = {}
        known = set(classes)
        for name in known:
            self.phrases[_key(_WORD.findall(name))] = name
        for name, words in synonyms.items():
            if name in known:
                for synonym in words:
                    self.phrases.setdefault(_key(_WORD.findall(str(synonym))), name)
        self.terms = sorted({" ".join(p) for p in self.phrases if p})

    def parse(self, text: str) -> ParsedText:
        words = _WORD.findall(text or "")[:MAX_WORDS]
        classes: list[str] = []
        rest: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
                name = self.phrases.get(_key(words[i:i + n]))
                if name is not None:
                    classes.append(name)
                    i += n
                    break
            else:
                rest.append(words[i].lower())
                i += 1
        return ParsedText(tuple(dict.fromkeys(classes)), tuple(rest), self.suggest(rest))

    def suggest(self, words: Iterable[str]) -> tuple[str, ...]:
        """Close class names / synonyms, for the words as a phrase ("dril hole") and one by one."""
        words = list(words)
        found: list[str] = []
        for word in ([" ".join(words)] if len(words) > 1 else []) + words:
            if word.isdigit() or len(word) < 3:
                continue
            for term in difflib.get_close_matches(" ".join(_key(word.split())), self.terms, n=3, cutoff=0.7):
                found.append(self.phrases[tuple(term.split())])
        return tuple(dict.fromkeys(found))
