import pytest

from obliviate.suppression.decoders import decoded_views
from obliviate.suppression.normalize import canonical, compact_key


@pytest.mark.parametrize("text", [
    "Lyon", "LYON", "lYoN", "L y o n", "L.y.o.n", "L-y-o-n", "L\u200by\u200bo\u200bn", "Lуоn",  # Cyrillic у, о
    "Ｌｙｏｎ",  # fullwidth
    "\u004c\u0079\u006f\u006e\u0301",  # combining accent
])
def test_character_evasions_have_one_canonical_form(text):
    assert canonical(text).text == canonical("lyon").text


def test_leetspeak_maps_to_the_same_form():
    assert canonical("Br0nz3 574r").text == canonical("Bronze Star").text


def test_accents_and_case_fold():
    assert canonical("César").text == canonical("cesar").text


def test_ordinary_words_are_not_collapsed():
    assert canonical("a cat sat on a mat").text == "a cat sat on a mat"


def test_span_maps_back_to_the_source():
    text = "He lives in L.y.o.n now"
    c = canonical(text)
    at = c.text.index(canonical("lyon").text)
    s, e = c.source_span(at, at + len(canonical("lyon").text))
    assert text[s:e] == "L.y.o.n"


def test_compact_key_drops_separators():
    assert compact_key("Lyon, France") == compact_key("lyonfrance")


def test_decoders_find_base64_hex_and_reversed():
    import base64

    found = {v.decoder: v.text for v in decoded_views("x " + base64.b64encode(b"Bronze Star").decode() + " y")}
    assert found["base64"] == "Bronze Star"
    assert any(v.text == "Bronze Star" for v in decoded_views(b"Bronze Star".hex()))
    assert any("Bronze Star" in v.text for v in decoded_views("ratS eznorB"))


def test_decoders_leave_plain_words_and_numbers_alone():
    views = decoded_views("Hello everyone, call 0123456789 please")
    assert not [v for v in views if v.decoder in ("base64", "hex")]
