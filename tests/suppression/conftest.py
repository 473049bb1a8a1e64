import pytest

pytest.importorskip("ahocorasick")
pytest.importorskip("rapidfuzz")
pytest.importorskip("datasketch")


@pytest.fixture(scope="session")
def corpus():
    from obliviate.data.persons import make_persons_corpus

    return make_persons_corpus(20, 0.1, seed=0)


@pytest.fixture(scope="session")
def protected(corpus):
    from obliviate.suppression import compile_persons

    return compile_persons("subjects:" + ",".join(corpus.forget_subjects), corpus)


@pytest.fixture(scope="session")
def person(corpus):
    return corpus.person(corpus.forget_subjects[0])
