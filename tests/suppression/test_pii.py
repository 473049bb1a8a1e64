import pytest

from obliviate.suppression import GUARDS, GuardContext
from obliviate.suppression.guards.pii import recognise

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL")


def _rate(kind, texts):
    return sum(any(h.kind == kind for h in recognise(t, (kind,))) for t in texts) / len(texts)


@pytest.fixture(scope="module")
def fakers():
    from faker import Faker

    out = []
    for i, loc in enumerate(LOCALES):
        f = Faker(loc)
        f.seed_instance(i)
        out.append(f)
    return out


def test_email_recall_on_faker(fakers):
    texts = [f"Write to {f.email()} today." for f in fakers for _ in range(30)]
    assert _rate("email", texts) == 1.0


def test_phone_recall_on_faker(fakers):
    texts = [f"Call me on {f.phone_number()} after six." for f in fakers for _ in range(30)]
    assert _rate("phone", texts) >= 0.85  # measured 0.9+; short local formats without area code are missed


def test_date_recall_on_faker(fakers):
    import datetime as dt

    f = fakers[0]
    dates = [f.date_of_birth() for _ in range(60)]
    formats = ["%d %B %Y", "%B %d, %Y", "%Y-%m-%d", "%d/%m/%Y"]
    texts = [f"Born on {d.strftime(fmt)}." for d in dates for fmt in formats]
    assert _rate("date", texts) == 1.0
    hit = recognise("born on 24 January 1984", ("date",))[0]
    assert hit.value == dt.date(1984, 1, 24).isoformat()


def test_address_recall_on_faker(fakers):
    texts = [f"She lives at {f.street_address()}." for f in fakers[:2] for _ in range(40)]
    assert _rate("address", texts) >= 0.8


def test_name_recall_on_faker(fakers):
    texts = [f"I spoke with {f.first_name()} {f.last_name()} yesterday." for f in fakers for _ in range(30)]
    assert _rate("name", texts) >= 0.9


def test_no_pii_in_plain_text():
    assert recognise("the cat sat on the mat and ate 3 fish", ("email", "phone", "date", "address")) == []


def test_protected_mode_blocks_only_forgotten_subjects(protected, corpus, person):
    g = GUARDS.get("pii")().fit(protected)
    other = corpus.person(corpus.neighbour_subjects[0])
    digits = "".join(c for c in person.phone if c.isdigit())
    assert g.check(f"Ring {digits} now", GuardContext(prompt="")).action == "block"  # another format, same number
    assert g.check(f"Ring {other.phone} now", GuardContext(prompt="")).action == "allow"
    assert GUARDS.get("pii")(mode="any").fit(protected).check(f"Ring {other.phone}", GuardContext(prompt="")).action == "block"
