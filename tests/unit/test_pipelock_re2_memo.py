"""`bottle_bundle.pipelock_config.re2_error` remembers its answer per
pattern; a remembered answer is the computed one, refusals included."""

from bottle_bundle import pipelock_config


def test_remembered_answers_are_the_computed_ones():
    patterns = [r"sk-ant-[A-Za-z0-9_-]{20,}", r"(?=x)y", r"a\Z", r"a\C", r"(", r"ok\z"]
    pipelock_config._RE2_ERRORS.clear()
    first = [pipelock_config.re2_error(p) for p in patterns]
    assert first == [pipelock_config._re2_error(p) for p in patterns]
    assert first[0] is None and first[-1] is None and all(first[1:-1])
    assert set(pipelock_config._RE2_ERRORS) == set(patterns)
    assert [pipelock_config.re2_error(p) for p in patterns] == first
