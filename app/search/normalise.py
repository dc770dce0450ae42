"""Text normalisation shared by every search back end: what is typed and what is stored are
compared in the same form, so accents, case, hyphens and apostrophes never hide a customer."""
from __future__ import annotations

import re
import unicodedata

# Letters that NFKD does not decompose into a base letter plus accents.
_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss", "ø": "o", "Ø": "o",
                            "đ": "d", "Đ": "d", "ł": "l", "Ł": "l"})
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def normalise(text: str | None) -> str:
    """'Jean-Baptiste LEFÈVRE' → 'jean baptiste lefevre'; 'Saint-Étienne' → 'saint etienne'."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return _NOT_ALNUM.sub(" ", bare).strip()


def tokens(text: str | None) -> list[str]:
    """The words of the normalised text, in order."""
    return normalise(text).split()


def compact(text: str | None) -> str:
    """The normalised text without spaces: identifiers typed with or without separators."""
    return normalise(text).replace(" ", "")


def trigrams(word: str) -> set[str]:
    """The word's trigrams, padded as pg_trgm pads them: two spaces before, one after."""
    padded = f"  {word} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def similarity(a: str, b: str) -> float:
    """Share of trigrams two words have in common (pg_trgm's similarity): 'lefebre'/'lefevre' 0.45."""
    ta, tb = trigrams(a), trigrams(b)
    return len(ta & tb) / len(ta | tb) if ta and tb else 0.0
