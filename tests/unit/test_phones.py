"""Phone numbers are stored in E.164 whatever the way they were typed, shown the French way."""
import pytest

from app.errors import BusinessError
from app.parties.phones import display_phone, normalise_phone


@pytest.mark.parametrize("typed", [
    "06 12 34 56 78", "+33612345678", "0033 6 12 34 56 78", "06.12.34.56.78", "0612345678", "+33 (0)6 12 34 56 78",
])
def test_every_usual_way_of_typing_a_mobile_gives_one_number(typed):
    assert normalise_phone(typed) == "+33612345678"


def test_landline_and_foreign_numbers():
    assert normalise_phone("04 78 12 34 56") == "+33478123456"
    assert normalise_phone("+41 22 345 67 89") == "+41223456789"


@pytest.mark.parametrize("typed", ["", "abc", "06 12", "07 11 22 33 44"])
def test_unusable_numbers_are_refused_with_a_message(typed):
    with pytest.raises(BusinessError, match="Numéro de téléphone"):
        normalise_phone(typed)


def test_display_in_french_format():
    assert display_phone("+33612345678") == "06 12 34 56 78"
    assert display_phone("+41223456789") == "+41 22 345 67 89"
