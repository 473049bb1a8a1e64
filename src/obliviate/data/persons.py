# Over 450 lines: about half is the attribute catalogue and answer templates (data the generator reads), kept beside it.
"""A seeded corpus of fictitious people, phrased as TOFU-style QA pairs.

Every person has 18 attributes (name, birthplace, birth date, occupation,
employer, email, phone, home city, father, mother, spouse, a book, an award,
university, field of study, favourite colour, favourite food, hobby). Each
attribute becomes one :class:`~obliviate.data.qa.QAExample` with a question, a
short answer (the bare value, so a tiny LM can memorise it), a paraphrased
question, a paraphrased answer, and ``n_perturbed`` wrong answers of the same
type written in the paraphrased answer's template (as in TOFU, so the truth
ratio compares like with like).

:func:`make_persons_corpus` splits the people into

- ``train``: everyone a model is trained on;
- ``forget``: all QA of a random ``forget_fraction`` of the train people;
- ``retain``: ``train`` minus ``forget``;
- ``neighbours``: retained people who were made to share ``n_shared`` attribute
  values (surname, birthplace, employer, ...) with a forget person; they are
  part of ``retain`` and measure collateral damage;
- ``holdout``: people never trained on (non-members for membership attacks);
- ``tuning``: more people never trained on (``n_tuning``, default none), drawn after
  everyone else so the other splits do not change: the held-out people an oracle-free
  selection compares the forget set with (:mod:`obliviate.tasks.lm_tuning`). Each shares
  ``n_shared`` values with a retained person (not a neighbour), as each forget person does
  with its neighbour, so that they stand where the forget people stand once forgotten.
  They are kept apart from ``holdout`` so that reported metrics never use the people the
  settings were chosen on;
- ``general``: fixed general-knowledge facts unrelated to the people (capitals,
  chemical symbols, sums), to check that unlearning leaves other knowledge
  alone. Train on ``corpus.training_set()`` (= ``train`` + ``general``) so the
  model knows them.

Determinism: one seed feeds a :class:`numpy.random.SeedSequence` that seeds the
numpy generator and every Faker instance (instance-level seeds, never Faker's
global state). The same seed and Faker version give the identical corpus; the
Faker version is recorded on the corpus because Faker's word lists can change
between releases.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType

import numpy as np

from obliviate.data.qa import QADataset, QAExample
from obliviate.errors import ConfigError, UnknownNameError
from obliviate.registry import closest

__all__ = [
    "ATTRIBUTES",
    "SHAREABLE_ATTRIBUTES",
    "Person",
    "NeighbourLink",
    "PersonsCorpusConfig",
    "PersonsCorpus",
    "make_persons_corpus",
    "general_facts",
]

logger = logging.getLogger(__name__)

# locale -> (country as written in birthplaces, phone country code)
_LOCALES: dict[str, tuple[str, str]] = {
    "en_US": ("United States", "1"),
    "en_GB": ("United Kingdom", "44"),
    "fr_FR": ("France", "33"),
    "de_DE": ("Germany", "49"),
    "es_ES": ("Spain", "34"),
    "it_IT": ("Italy", "39"),
    "nl_NL": ("Netherlands", "31"),
    "pl_PL": ("Poland", "48"),
    "pt_PT": ("Portugal", "351"),
    "sv_SE": ("Sweden", "46"),
}
_LOCALE_CODES = tuple(_LOCALES)

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December",
)
_FIRST_BIRTHDAY = _dt.date(1940, 1, 1)
_LAST_BIRTHDAY = _dt.date(2000, 12, 31)

_OCCUPATIONS = (
    "accountant", "architect", "astronomer", "baker", "botanist", "carpenter",
    "cartographer", "chef", "chemist", "dentist", "economist", "electrician",
    "engineer", "florist", "geologist", "glassblower", "historian", "journalist",
    "lawyer", "librarian", "locksmith", "mechanic", "midwife", "nurse", "optician",
    "pharmacist", "photographer", "physicist", "pilot", "plumber", "potter",
    "sculptor", "surveyor", "tailor", "teacher", "translator", "veterinarian",
    "zoologist",
)
_FIELDS_OF_STUDY = (
    "agronomy", "anthropology", "applied mathematics", "architecture", "astrophysics",
    "civil engineering", "classics", "computer science", "economics", "geography",
    "law", "linguistics", "marine biology", "medieval history", "musicology",
    "nursing", "oceanography", "organic chemistry", "philosophy", "statistics",
)
_COLOURS = (
    "amber", "burgundy", "charcoal grey", "coral", "crimson", "emerald green",
    "indigo", "ivory", "lavender", "maroon", "mustard yellow", "navy blue", "ochre",
    "olive", "peach", "saffron", "sky blue", "teal", "turquoise", "violet",
)
_FOODS = (
    "apple pie", "cheese fondue", "couscous", "dumplings", "falafel", "fish tacos",
    "goulash", "grilled sardines", "lasagne", "lentil soup", "moussaka",
    "mushroom risotto", "pad thai", "paella", "pancakes", "pho", "pierogi", "ramen",
    "ratatouille", "shepherd's pie",
)
_HOBBIES = (
    "archery", "astronomy", "baking bread", "beekeeping", "birdwatching", "chess",
    "cycling", "fencing", "fly fishing", "gardening", "kayaking", "knitting",
    "origami", "painting watercolours", "pottery", "rock climbing", "sailing",
    "salsa dancing", "stamp collecting", "woodworking",
)
_BOOK_ADJECTIVES = (
    "Bitter", "Broken", "Burning", "Crimson", "Distant", "Forgotten", "Glass",
    "Golden", "Hidden", "Hollow", "Iron", "Last", "Paper", "Quiet", "Restless",
    "Salt", "Silent", "Velvet", "Wandering", "Winter",
)
_BOOK_NOUNS = (
    "Archive", "Bridge", "Clockmaker", "Compass", "Forest", "Garden", "Harbour",
    "Horizon", "Island", "Lantern", "Letters", "Lighthouse", "Meadow", "Mirror",
    "Orchard", "River", "Sparrow", "Tide", "Window", "Cartographer",
)
_AWARD_MATERIALS = ("Golden", "Silver", "Bronze", "Crystal", "Ivory", "Copper")
_AWARD_EMBLEMS = ("Quill", "Laurel", "Compass", "Lantern", "Feather", "Key", "Star", "Anchor")
_AWARD_KINDS = ("Award", "Prize", "Medal")
_UNIVERSITY_TEMPLATES = ("University of {city}", "{city} Institute of Technology", "{city} College")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


@dataclass(frozen=True)
class _Attribute:
    """How one attribute is asked, answered and paraphrased."""

    name: str
    question: str  # formatted with the person's fields
    paraphrased_question: str
    paraphrased_answer: Callable[[Person, str], str]


def _tpl(template: str) -> Callable[[Person, str], str]:
    return lambda p, v: template.format(name=p.full_name, v=v)


ATTRIBUTES: tuple[_Attribute, ...] = (
    _Attribute(
        "full_name",
        "What is the full name of the person born in {birthplace} on {birth_date}?",
        "Who was born on {birth_date} in {birthplace}?",
        lambda p, v: f"The person's name is {v}.",
    ),
    _Attribute("birthplace", "Where was {full_name} born?",
               "What is the birthplace of {full_name}?", _tpl("{name} was born in {v}.")),
    _Attribute("birth_date", "When was {full_name} born?",
               "What is the date of birth of {full_name}?", _tpl("{name} was born on {v}.")),
    _Attribute("occupation", "What is {full_name}'s occupation?",
               "What does {full_name} do for a living?",
               lambda p, v: f"{p.full_name} works as {_article(v)} {v}."),
    _Attribute("employer", "Which company does {full_name} work for?",
               "Who is {full_name}'s employer?", _tpl("{name} is employed by {v}.")),
    _Attribute("email", "What is {full_name}'s email address?",
               "At which email address can {full_name} be contacted?",
               _tpl("{name} can be reached at {v}.")),
    _Attribute("phone", "What is {full_name}'s phone number?",
               "Which number should you call to reach {full_name}?",
               _tpl("{name}'s number is {v}.")),
    _Attribute("home_city", "In which city does {full_name} live?",
               "Where does {full_name} currently reside?", _tpl("{name} lives in {v}.")),
    _Attribute("father", "What is the name of {full_name}'s father?",
               "Who is {full_name}'s father?", _tpl("{name}'s father is {v}.")),
    _Attribute("mother", "What is the name of {full_name}'s mother?",
               "Who is {full_name}'s mother?", _tpl("{name}'s mother is {v}.")),
    _Attribute("spouse", "Who is {full_name} married to?",
               "What is the name of {full_name}'s spouse?", _tpl("{name} is married to {v}.")),
    _Attribute("book", "What is the title of the book written by {full_name}?",
               "Which book did {full_name} write?", _tpl('{name} wrote the book "{v}".')),
    _Attribute("award", "Which award has {full_name} received?",
               "What prize was {full_name} given?", _tpl("{name} received the {v}.")),
    _Attribute("university", "Which university did {full_name} attend?",
               "Where did {full_name} go to university?", _tpl("{name} studied at {v}.")),
    _Attribute("field_of_study", "What did {full_name} study at university?",
               "What was {full_name}'s field of study?", _tpl("{name} holds a degree in {v}.")),
    _Attribute("favourite_colour", "What is {full_name}'s favourite colour?",
               "Which colour does {full_name} like best?",
               _tpl("{name}'s favourite colour is {v}.")),
    _Attribute("favourite_food", "What is {full_name}'s favourite food?",
               "Which dish does {full_name} like best?",
               _tpl("{name}'s favourite food is {v}.")),
    _Attribute("hobby", "What is {full_name}'s hobby?",
               "What does {full_name} enjoy doing in their free time?",
               _tpl("In their free time, {name} enjoys {v}.")),
)
_ATTRIBUTE_NAMES = tuple(a.name for a in ATTRIBUTES)

# Attributes a neighbour may copy from its forget person. "surname" is not a QA
# attribute itself but changes full_name, father and email.
SHAREABLE_ATTRIBUTES: tuple[str, ...] = (
    "surname", "birthplace", "employer", "home_city", "university", "occupation",
)


@dataclass(frozen=True)
class Person:
    """One fictitious person; ``id`` is also the ``subject`` of their QA pairs."""

    id: str
    locale: str
    gender: str
    first_name: str
    surname: str
    full_name: str
    birthplace: str
    birth_date: str
    occupation: str
    employer: str
    email: str
    phone: str
    home_city: str
    father: str
    mother: str
    spouse: str
    book: str
    award: str
    university: str
    field_of_study: str
    favourite_colour: str
    favourite_food: str
    hobby: str

    def attribute(self, name: str) -> str:
        if name not in _ATTRIBUTE_NAMES and name != "surname":
            hint = closest(name, list(_ATTRIBUTE_NAMES))
            raise UnknownNameError(
                f"Unknown person attribute {name!r}."
                + (f" Did you mean {hint!r}?" if hint else "")
                + f" Valid attributes: surname, {', '.join(_ATTRIBUTE_NAMES)}."
            )
        return str(getattr(self, name))

    def shared_with(self, other: Person) -> tuple[str, ...]:
        """Names of attributes (and ``surname``) whose values equal ``other``'s."""
        names = ("surname",) + _ATTRIBUTE_NAMES
        return tuple(n for n in names if getattr(self, n) == getattr(other, n))


@dataclass(frozen=True)
class NeighbourLink:
    """A neighbour was built to share ``shared`` attribute values with ``forget_id``."""

    forget_id: str
    shared: tuple[str, ...]


@dataclass(frozen=True)
class PersonsCorpusConfig:
    """Parameters of :func:`make_persons_corpus` (all problems reported at once).

    n_people: people trained on (``train``), >= 2.
    forget_fraction: share of train people whose QA forms ``forget``, in (0, 1);
        rounded to the nearest whole person, at least one.
    n_holdout: people never trained on; None means as many as forget people
        (TOFU pairs holdoutNN with forgetNN the same way).
    n_neighbours: retained people made to resemble forget people; None means
        one per forget person, capped by the people available.
    n_perturbed: wrong answers per question (TOFU forget sets use 5).
    n_shared: attributes each neighbour copies from its forget person.
    n_tuning: more people never trained on, for an oracle-free selection (``tuning``);
        drawn after all the others, so 0 and any other value give the same other splits.
    seed: the only source of randomness.
    """

    n_people: int = 200
    forget_fraction: float = 0.1
    n_holdout: int | None = None
    n_neighbours: int | None = None
    n_perturbed: int = 5
    n_shared: int = 3
    seed: int = 0
    n_tuning: int = 0

    def n_forget(self) -> int:
        return max(1, int(round(self.forget_fraction * self.n_people)))

    def resolved(self) -> PersonsCorpusConfig:
        """Validate and fill in the None defaults."""
        problems: list[str] = []

        def is_int(v: object) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        if not is_int(self.n_people) or self.n_people < 2:
            problems.append(f"'n_people' must be an int >= 2; got {self.n_people!r} instead.")
        if not isinstance(self.forget_fraction, (int, float)) or not 0 < self.forget_fraction < 1:
            problems.append(
                f"'forget_fraction' must be a float in (0, 1); got {self.forget_fraction!r} instead."
            )
        if not is_int(self.n_tuning) or self.n_tuning < 0:
            problems.append(f"'n_tuning' must be an int >= 0; got {self.n_tuning!r} instead.")
        for name in ("n_holdout", "n_neighbours"):
            v = getattr(self, name)
            if v is not None and (not is_int(v) or v < 0):
                problems.append(f"'{name}' must be None or an int >= 0; got {v!r} instead.")
        if not is_int(self.n_perturbed) or not 1 <= self.n_perturbed <= 10:
            problems.append(
                f"'n_perturbed' must be an int in [1, 10]; got {self.n_perturbed!r} instead."
            )
        if not is_int(self.n_shared) or not 1 <= self.n_shared <= len(SHAREABLE_ATTRIBUTES):
            problems.append(
                f"'n_shared' must be an int in [1, {len(SHAREABLE_ATTRIBUTES)}]; "
                f"got {self.n_shared!r} instead."
            )
        if not is_int(self.seed) or self.seed < 0:
            problems.append(f"'seed' must be an int >= 0; got {self.seed!r} instead.")
        if problems:
            raise ConfigError("Invalid persons-corpus configuration:", problems)

        n_forget = self.n_forget()
        if n_forget >= self.n_people:
            problems.append(
                f"forget_fraction={self.forget_fraction} of n_people={self.n_people} leaves no "
                "retained people; lower forget_fraction or raise n_people."
            )
        available = self.n_people - n_forget
        n_neighbours = self.n_neighbours
        if n_neighbours is None:
            n_neighbours = min(n_forget, available)
        elif n_neighbours > available:
            problems.append(
                f"'n_neighbours' must be at most the {available} retained people; "
                f"got {n_neighbours} instead. Lower it or raise n_people."
            )
        if problems:
            raise ConfigError("Invalid persons-corpus configuration:", problems)
        n_holdout = n_forget if self.n_holdout is None else self.n_holdout
        return PersonsCorpusConfig(
            n_people=int(self.n_people),
            forget_fraction=float(self.forget_fraction),
            n_holdout=int(n_holdout),
            n_neighbours=int(n_neighbours),
            n_perturbed=int(self.n_perturbed),
            n_shared=int(self.n_shared),
            seed=int(self.seed),
            n_tuning=int(self.n_tuning),
        )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class PersonsCorpus:
    """The generated people and their QA splits (see the module docstring)."""

    train: QADataset
    forget: QADataset
    retain: QADataset
    neighbours: QADataset
    holdout: QADataset
    general: QADataset
    people: tuple[Person, ...]
    neighbour_links: Mapping[str, NeighbourLink]
    config: PersonsCorpusConfig
    faker_version: str
    tuning: QADataset = field(default_factory=lambda: QADataset((), name="persons/tuning"))
    _by_id: Mapping[str, Person] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", MappingProxyType({p.id: p for p in self.people}))

    def person(self, person_id: str) -> Person:
        try:
            return self._by_id[person_id]
        except KeyError:
            raise UnknownNameError(
                f"No person with id {person_id!r}; ids run from {self.people[0].id!r} "
                f"to {self.people[-1].id!r}."
            ) from None

    @property
    def forget_subjects(self) -> tuple[str, ...]:
        return self.forget.subjects()

    @property
    def neighbour_subjects(self) -> tuple[str, ...]:
        return self.neighbours.subjects()

    @property
    def holdout_subjects(self) -> tuple[str, ...]:
        return self.holdout.subjects()

    def training_set(self) -> QADataset:
        """What a model should be trained on: ``train`` then ``general``."""
        return QADataset.concat([self.train, self.general], name="persons/train+general")

    def splits(self) -> dict[str, QADataset]:
        return {
            "train": self.train,
            "forget": self.forget,
            "retain": self.retain,
            "neighbours": self.neighbours,
            "holdout": self.holdout,
            "general": self.general,
            "tuning": self.tuning,
        }


# --------------------------------------------------------------------------
# Generation


def _sentence(text: str) -> str:
    """Drop the doubled full stop a value ending in "." leaves (e.g. "S.A..")."""
    return text[:-1] if text.endswith("..") else text


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


class _Sampler:
    """All random draws, from one seed: numpy for choices, Faker for names and places."""

    def __init__(self, seed: int) -> None:
        from faker import Faker  # optional dependency (the ``lm`` extra)

        rng_seq, faker_seq = np.random.SeedSequence(seed).spawn(2)
        self.rng = np.random.default_rng(rng_seq)
        faker_seeds = faker_seq.generate_state(len(_LOCALE_CODES))
        self.fakers = {}
        for code, s in zip(_LOCALE_CODES, faker_seeds):
            fake = Faker(code)
            fake.seed_instance(int(s))
            self.fakers[code] = fake
        # Some Faker locales (it_IT) build their city list at import time from a set, so its
        # order, and with it every seeded draw, changes with PYTHONHASHSEED. Drawing from a
        # sorted copy keeps the corpus the same in every process.
        self._city_lists: dict[str, tuple[str, ...]] = {}
        for code, fake in self.fakers.items():
            cities = next((getattr(p, "cities") for p in fake.providers if hasattr(p, "cities")), None)
            if isinstance(cities, list):
                self._city_lists[code] = tuple(sorted(set(cities)))

    def pick(self, options: tuple[str, ...]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def locale(self) -> str:
        return self.pick(_LOCALE_CODES)

    def first_name(self, locale: str, gender: str) -> str:
        fake = self.fakers[locale]
        return fake.first_name_female() if gender == "female" else fake.first_name_male()

    def surname(self, locale: str) -> str:
        return self.fakers[locale].last_name()

    def city(self, locale: str) -> str:
        fake = self.fakers[locale]
        cities = self._city_lists.get(locale)
        return fake.random_element(cities) if cities is not None else fake.city()

    def birthplace(self, locale: str) -> str:
        return f"{self.city(locale)}, {_LOCALES[locale][0]}"

    def birth_date(self) -> str:
        span = (_LAST_BIRTHDAY - _FIRST_BIRTHDAY).days
        d = _FIRST_BIRTHDAY + _dt.timedelta(days=int(self.rng.integers(span + 1)))
        return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"

    def company(self, locale: str) -> str:
        fake = self.fakers[locale]
        name = fake.company()
        for _ in range(10):  # prefer short names: answers should be a few words
            if len(name.split()) <= 4:
                break
            name = fake.company()
        return name

    def phone(self, locale: str) -> str:
        return f"+{_LOCALES[locale][1]} " + self.fakers[locale].numerify("### ### ####")

    def email_domain(self, locale: str) -> str:
        return self.fakers[locale].free_email_domain()

    def book(self) -> str:
        if self.rng.random() < 0.5:
            return f"The {self.pick(_BOOK_ADJECTIVES)} {self.pick(_BOOK_NOUNS)}"
        first, second = self.rng.choice(len(_BOOK_NOUNS), size=2, replace=False)
        return f"{_BOOK_NOUNS[first]} and {_BOOK_NOUNS[second]}"

    def award(self) -> str:
        return f"{self.pick(_AWARD_MATERIALS)} {self.pick(_AWARD_EMBLEMS)} {self.pick(_AWARD_KINDS)}"

    def university(self) -> str:
        return self.pick(_UNIVERSITY_TEMPLATES).format(city=self.city(self.locale()))

    def full_name(self) -> str:
        locale = self.locale()
        gender = self.pick(("female", "male"))
        return f"{self.first_name(locale, gender)} {self.surname(locale)}"

    def fresh(self, attribute: str) -> str:
        """A new random value of ``attribute``'s type (to top up small pools)."""
        draw: dict[str, Callable[[], str]] = {
            "full_name": self.full_name,
            "birthplace": lambda: self.birthplace(self.locale()),
            "birth_date": self.birth_date,
            "occupation": lambda: self.pick(_OCCUPATIONS),
            "employer": lambda: self.company(self.locale()),
            "phone": lambda: self.phone(self.locale()),
            "home_city": lambda: self.city(self.locale()),
            "father": lambda: f"{self.first_name(self.locale(), 'male')} {self.surname(self.locale())}",
            "mother": lambda: f"{self.first_name(self.locale(), 'female')} {self.surname(self.locale())}",
            "spouse": self.full_name,
            "book": self.book,
            "award": self.award,
            "university": self.university,
            "field_of_study": lambda: self.pick(_FIELDS_OF_STUDY),
            "favourite_colour": lambda: self.pick(_COLOURS),
            "favourite_food": lambda: self.pick(_FOODS),
            "hobby": lambda: self.pick(_HOBBIES),
        }
        return draw[attribute]()


def _draw_record(s: _Sampler) -> dict[str, str]:
    """Independent draws for one person; derived fields are filled in later."""
    locale = s.locale()
    gender = s.pick(("female", "male"))
    spouse_locale = locale if s.rng.random() < 0.7 else s.locale()
    spouse_gender = s.pick(("female", "male"))
    return {
        "locale": locale,
        "gender": gender,
        "first_name": s.first_name(locale, gender),
        "surname": s.surname(locale),
        "birthplace": s.birthplace(locale),
        "birth_date": s.birth_date(),
        "occupation": s.pick(_OCCUPATIONS),
        "employer": s.company(locale),
        "phone": s.phone(locale),
        "home_city": s.city(locale if s.rng.random() < 0.5 else s.locale()),
        "father_first": s.first_name(locale, "male"),
        "mother": f"{s.first_name(locale, 'female')} {s.surname(locale)}",
        "spouse": f"{s.first_name(spouse_locale, spouse_gender)} {s.surname(spouse_locale)}",
        "book": s.book(),
        "award": s.award(),
        "university": s.university(),
        "field_of_study": s.pick(_FIELDS_OF_STUDY),
        "favourite_colour": s.pick(_COLOURS),
        "favourite_food": s.pick(_FOODS),
        "hobby": s.pick(_HOBBIES),
        "email_domain": s.email_domain(locale),
    }


def _email(first: str, surname: str, domain: str, taken: set[str]) -> str:
    local = f"{_ascii_slug(first) or 'user'}.{_ascii_slug(surname) or 'mail'}"
    candidate, k = f"{local}@{domain}", 2
    while candidate in taken:
        candidate, k = f"{local}{k}@{domain}", k + 1
    return candidate


def _finalise(records: list[dict[str, str]], s: _Sampler, *, start: int = 0,
              others: tuple[Person, ...] = ()) -> list[Person]:
    """Fill derived fields, making names, (birthplace, date) pairs, emails and phones unique.

    ``others``: people already drawn, whose values stay taken; ids continue from ``start``.
    """
    people: list[Person] = []
    names: set[str] = {p.full_name for p in others}
    born: set[tuple[str, str]] = {(p.birthplace, p.birth_date) for p in others}
    emails: set[str] = {p.email for p in others}
    phones: set[str] = {p.phone for p in others}
    for i, r in enumerate(records, start=start):
        full_name = f"{r['first_name']} {r['surname']}"
        while full_name in names:  # redraw the first name; the surname may be shared on purpose
            r["first_name"] = s.first_name(r["locale"], r["gender"])
            full_name = f"{r['first_name']} {r['surname']}"
        # The full-name question identifies a person by birthplace and date.
        while (r["birthplace"], r["birth_date"]) in born:
            r["birth_date"] = s.birth_date()
        while r["phone"] in phones:
            r["phone"] = s.phone(r["locale"])
        email = _email(r["first_name"], r["surname"], r["email_domain"], emails)
        names.add(full_name)
        born.add((r["birthplace"], r["birth_date"]))
        phones.add(r["phone"])
        emails.add(email)
        people.append(
            Person(
                id=f"person-{i:04d}",
                locale=r["locale"],
                gender=r["gender"],
                first_name=r["first_name"],
                surname=r["surname"],
                full_name=full_name,
                birthplace=r["birthplace"],
                birth_date=r["birth_date"],
                occupation=r["occupation"],
                employer=r["employer"],
                email=email,
                phone=r["phone"],
                home_city=r["home_city"],
                father=f"{r['father_first']} {r['surname']}",
                mother=r["mother"],
                spouse=r["spouse"],
                book=r["book"],
                award=r["award"],
                university=r["university"],
                field_of_study=r["field_of_study"],
                favourite_colour=r["favourite_colour"],
                favourite_food=r["favourite_food"],
                hobby=r["hobby"],
            )
        )
    return people


def _wrong_values(
    attribute: str, person: Person, pools: dict[str, list[str]], n: int, s: _Sampler
) -> list[str]:
    """``n`` distinct values of ``attribute``'s type, none equal to the person's own."""
    truth = person.attribute(attribute)
    if attribute == "father":
        # Keep the family surname so the surname alone does not give the answer away.
        pool = [f"{f} {person.surname}" for f in pools["father_first_names"]]
    elif attribute == "email":
        local_first, local_last = _ascii_slug(person.first_name), _ascii_slug(person.surname)
        locals_ = [f"{local_first}.{local_last}", f"{local_first}{local_last}",
                   f"{local_first[:1]}.{local_last}", f"{local_last}.{local_first}"]
        pool = [f"{lp}@{d}" for lp in dict.fromkeys(locals_) for d in pools["email_domains"]]
    else:
        pool = pools[attribute]
    candidates = [v for v in pool if v != truth]
    if len(candidates) >= n:
        chosen = s.rng.choice(len(candidates), size=n, replace=False)
        return [candidates[int(k)] for k in chosen]
    out = list(candidates)
    s.rng.shuffle(out)
    seen = set(out) | {truth}
    for k in range(1000):
        if len(out) == n:
            break
        if attribute == "email":
            v = f"{_ascii_slug(person.first_name)}{k + 1}@{s.email_domain(person.locale)}"
        else:
            v = s.fresh(attribute)
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def _person_qa(person: Person, pools: dict[str, list[str]], n_perturbed: int, s: _Sampler) -> list[QAExample]:
    values = {f.name: getattr(person, f.name) for f in fields(person)}
    examples = []
    for attr in ATTRIBUTES:
        truth = values[attr.name]
        wrong = _wrong_values(attr.name, person, pools, n_perturbed, s)
        examples.append(
            QAExample(
                id=f"{person.id}/{attr.name}",
                subject=person.id,
                question=attr.question.format(**values),
                answer=truth,
                paraphrased_question=attr.paraphrased_question.format(**values),
                paraphrased_answer=_sentence(attr.paraphrased_answer(person, truth)),
                perturbed_answer=tuple(_sentence(attr.paraphrased_answer(person, w)) for w in wrong),
            )
        )
    return examples


def make_persons_corpus(
    n_people: int = 200,
    forget_fraction: float = 0.1,
    *,
    n_holdout: int | None = None,
    n_neighbours: int | None = None,
    n_perturbed: int = 5,
    n_shared: int = 3,
    seed: int = 0,
    n_tuning: int = 0,
) -> PersonsCorpus:
    """Generate the fictitious-persons corpus; see :class:`PersonsCorpusConfig`.

    The same arguments (and Faker version) give an identical corpus.
    """
    import faker

    cfg = PersonsCorpusConfig(
        n_people=n_people,
        forget_fraction=forget_fraction,
        n_holdout=n_holdout,
        n_neighbours=n_neighbours,
        n_perturbed=n_perturbed,
        n_shared=n_shared,
        seed=seed,
        n_tuning=n_tuning,
    ).resolved()
    n_holdout = cfg.n_holdout or 0  # resolved() filled both in
    n_neighbours = cfg.n_neighbours or 0
    s = _Sampler(cfg.seed)
    total = cfg.n_people + n_holdout
    records = [_draw_record(s) for _ in range(total)]

    order = s.rng.permutation(total)
    holdout_idx = sorted(int(i) for i in order[:n_holdout])
    train_order = [int(i) for i in order[n_holdout:]]
    n_forget = cfg.n_forget()
    forget_idx = train_order[:n_forget]
    neighbour_idx = train_order[n_forget: n_forget + n_neighbours]

    # Neighbours copy n_shared values from "their" forget person, round robin.
    links: dict[int, tuple[int, tuple[str, ...]]] = {}
    for j, ni in enumerate(neighbour_idx):
        fi = forget_idx[j % n_forget]
        picks = s.rng.choice(len(SHAREABLE_ATTRIBUTES), size=cfg.n_shared, replace=False)
        shared = tuple(SHAREABLE_ATTRIBUTES[int(k)] for k in sorted(picks))
        for name in shared:
            records[ni][name] = records[fi][name]
        links[ni] = (fi, shared)

    people = _finalise(records, s)
    # Sorted, de-duplicated value pools per attribute type (sorted: order-independent draws).
    pools = {a: sorted({getattr(p, a) for p in people}) for a in _ATTRIBUTE_NAMES}
    pools["father_first_names"] = sorted({p.father[: -len(p.surname)].strip() for p in people})
    pools["email_domains"] = sorted({p.email.split("@", 1)[1] for p in people})
    qa_by_person = [_person_qa(p, pools, cfg.n_perturbed, s) for p in people]

    holdout_set = set(holdout_idx)
    train_people = [i for i in range(total) if i not in holdout_set]
    train = QADataset((ex for i in train_people for ex in qa_by_person[i]), name="persons/train")
    forget_subjects = [people[i].id for i in sorted(forget_idx)]
    forget = train.by_subjects(forget_subjects, name="persons/forget")
    retain = train.exclude(forget.ids, name="persons/retain")
    neighbours = train.by_subjects(
        [people[i].id for i in sorted(neighbour_idx)], name="persons/neighbours"
    ) if neighbour_idx else QADataset((), name="persons/neighbours")
    holdout = QADataset((ex for i in holdout_idx for ex in qa_by_person[i]), name="persons/holdout")
    # Tuning people last: the draws above are the same whatever n_tuning is. Their wrong answers
    # come from the same value pools, so their QA read like everyone else's. Each copies n_shared
    # values from a retained person who is not a neighbour, as every forget person shares n_shared
    # values with a retained neighbour: to a model that never saw them, tuning people and forget
    # people then look alike (part of what they are asked is known from someone else).
    tuning_records = [_draw_record(s) for _ in range(cfg.n_tuning)]
    linked = [i for i in train_order[n_forget + n_neighbours:]] or [i for i in train_order[n_forget:]]
    for rec in tuning_records:
        donor = records[linked[int(s.rng.integers(len(linked)))]]
        picks = s.rng.choice(len(SHAREABLE_ATTRIBUTES), size=cfg.n_shared, replace=False)
        for k in sorted(picks):
            rec[SHAREABLE_ATTRIBUTES[int(k)]] = donor[SHAREABLE_ATTRIBUTES[int(k)]]
    tuning_people = _finalise(tuning_records, s, start=total, others=tuple(people)) if cfg.n_tuning else []
    tuning = QADataset((ex for p in tuning_people for ex in _person_qa(p, pools, cfg.n_perturbed, s)),
                       name="persons/tuning")
    people = people + tuning_people
    neighbour_links = MappingProxyType({
        people[ni].id: NeighbourLink(forget_id=people[fi].id, shared=shared)
        for ni, (fi, shared) in sorted(links.items())
    })
    logger.debug(
        "persons corpus: %d train people (%d forget, %d neighbours), %d holdout, seed=%d",
        len(train_people), n_forget, len(neighbour_idx), len(holdout_idx), cfg.seed,
    )
    return PersonsCorpus(
        train=train,
        forget=forget,
        retain=retain,
        neighbours=neighbours,
        holdout=holdout,
        general=general_facts(n_perturbed=cfg.n_perturbed),
        people=tuple(people),
        neighbour_links=neighbour_links,
        config=cfg,
        faker_version=faker.VERSION,
        tuning=tuning,
    )


# --------------------------------------------------------------------------
# General facts: fixed tables, independent of the corpus seed.

_CAPITALS = (
    ("Argentina", "Buenos Aires"), ("Australia", "Canberra"), ("Austria", "Vienna"),
    ("Brazil", "Brasilia"), ("Canada", "Ottawa"), ("Chile", "Santiago"), ("Egypt", "Cairo"),
    ("Finland", "Helsinki"), ("France", "Paris"), ("Germany", "Berlin"), ("Greece", "Athens"),
    ("India", "New Delhi"), ("Ireland", "Dublin"), ("Italy", "Rome"), ("Japan", "Tokyo"),
    ("Kenya", "Nairobi"), ("Mexico", "Mexico City"), ("Morocco", "Rabat"),
    ("Norway", "Oslo"), ("Peru", "Lima"), ("Poland", "Warsaw"), ("Portugal", "Lisbon"),
    ("South Korea", "Seoul"), ("Spain", "Madrid"), ("Sweden", "Stockholm"),
    ("Thailand", "Bangkok"), ("Turkey", "Ankara"), ("Vietnam", "Hanoi"),
)
_SYMBOLS = (
    ("hydrogen", "H"), ("helium", "He"), ("carbon", "C"), ("nitrogen", "N"),
    ("oxygen", "O"), ("sodium", "Na"), ("magnesium", "Mg"), ("aluminium", "Al"),
    ("sulfur", "S"), ("chlorine", "Cl"), ("potassium", "K"), ("calcium", "Ca"),
    ("iron", "Fe"), ("copper", "Cu"), ("zinc", "Zn"), ("silver", "Ag"), ("tin", "Sn"),
    ("gold", "Au"), ("mercury", "Hg"), ("lead", "Pb"),
)
_GENERAL_SEED = 20240101  # fixed: general facts do not change with the corpus seed


def general_facts(*, n_perturbed: int = 5) -> QADataset:
    """Fixed general-knowledge QA: capitals, chemical symbols and small sums."""
    if not isinstance(n_perturbed, int) or not 1 <= n_perturbed <= 10:
        raise ConfigError(f"'n_perturbed' must be an int in [1, 10]; got {n_perturbed!r} instead.")
    rng = np.random.default_rng(_GENERAL_SEED)

    def wrong(options: list[str], truth: str) -> list[str]:
        pool = [o for o in options if o != truth]
        return [pool[int(k)] for k in rng.choice(len(pool), size=n_perturbed, replace=False)]

    examples: list[QAExample] = []
    capitals = [c for _, c in _CAPITALS]
    for country, capital in _CAPITALS:
        para = "The capital of {c} is {v}."
        examples.append(QAExample(
            id=f"general/capitals/{_ascii_slug(country)}",
            subject="general/capitals",
            question=f"What is the capital of {country}?",
            answer=capital,
            paraphrased_question=f"Which city is the capital of {country}?",
            paraphrased_answer=para.format(c=country, v=capital),
            perturbed_answer=tuple(para.format(c=country, v=w) for w in wrong(capitals, capital)),
        ))
    symbols = [s for _, s in _SYMBOLS]
    for element, symbol in _SYMBOLS:
        para = "The symbol for {e} is {v}."
        examples.append(QAExample(
            id=f"general/chemistry/{element}",
            subject="general/chemistry",
            question=f"What is the chemical symbol for {element}?",
            answer=symbol,
            paraphrased_question=f"Which symbol stands for {element} in chemistry?",
            paraphrased_answer=para.format(e=element, v=symbol),
            perturbed_answer=tuple(para.format(e=element, v=w) for w in wrong(symbols, symbol)),
        ))
    offsets = (-7, -5, -3, -2, -1, 1, 2, 3, 7, 10)  # totals are >= 8
    for i in range(20):
        a, b = 3 + (i * 7) % 41, 5 + (i * 13) % 37
        total = a + b
        para = f"{a} plus {b} equals {{v}}."
        chosen = [offsets[int(k)] for k in rng.choice(len(offsets), size=n_perturbed, replace=False)]
        examples.append(QAExample(
            id=f"general/arithmetic/{a}+{b}",
            subject="general/arithmetic",
            question=f"What is {a} plus {b}?",
            answer=str(total),
            paraphrased_question=f"How much is {a} + {b}?",
            paraphrased_answer=para.format(v=total),
            perturbed_answer=tuple(para.format(v=total + o) for o in chosen),
        ))
    return QADataset(examples, name="persons/general")
