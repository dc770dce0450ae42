"""What agents type and what is stored meet in one normalised form."""
import pytest

from app.search.normalise import compact, normalise, tokens


@pytest.mark.parametrize("typed,expected", [
    ("Jean-Baptiste LEFÈVRE", "jean baptiste lefevre"),
    ("Saint-Étienne", "saint etienne"),
    ("  l'Haÿ-les-Roses ", "l hay les roses"),
    ("Cœur de Lion", "coeur de lion"),
    ("Müller   Straße", "muller strasse"),
    ("Ærø", "aero"),
    ("", ""),
    (None, ""),
    ("%_'; DROP TABLE party;--", "drop table party"),
])
def test_normalise(typed, expected):
    assert normalise(typed) == expected


def test_tokens_and_compact_forms():
    assert tokens("Lefèvre, Jean") == ["lefevre", "jean"]
    assert compact("EL-2019 000311") == "el2019000311"
