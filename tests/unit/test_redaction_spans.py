"""`Registry._spans` has two ways to find the known forms in a text (form by
form with str.find, or window by window); they must find the same spans."""

import pytest
from hypothesis import given, settings, strategies as st

from conformance import redaction

_secret = st.text(alphabet="ab~_-=+/%", min_size=8, max_size=14)


def _spans_both(values, text):
    out = []
    for ratio in (0, 10**12):  # 0: always window by window; huge: always form by form
        registry = redaction.Registry()
        registry.plant(*values)
        old, redaction._FIND_RATIO = redaction._FIND_RATIO, ratio
        try:
            out.append((registry._spans(text), registry.find(text), registry.redact(text),
                        registry.kinds(text)))
        finally:
            redaction._FIND_RATIO = old
    return out


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_secret, min_size=1, max_size=3), data=st.data())
def test_form_by_form_finds_what_window_by_window_finds(values, data):
    """Texts made of the values' forms (overlapping, repeated, cut short)
    and filler from the same small alphabet, so forms collide often."""
    forms = sorted({f for v in values for f in redaction.encodings(v)})
    pieces = data.draw(st.lists(st.one_of(st.sampled_from(forms),
                                          st.sampled_from(forms).map(lambda f: f[1:]),
                                          st.sampled_from(forms).map(lambda f: f[:-1]),
                                          st.text(alphabet="ab~_-", max_size=6)),
                                max_size=12))
    text = "".join(pieces)
    window, by_form = _spans_both(values, text)
    assert window == by_form


def test_nested_and_overlapping_forms():
    values = ["abcdefgh", "abcdefghij", "cdefghijkl"]
    text = "xxabcdefghijklxxabcdefghabcdefgh"
    window, by_form = _spans_both(values, text)
    assert window == by_form
    assert window[0] == [(2, 12), (4, 14), (16, 24), (24, 32)]


@pytest.mark.parametrize("ratio", [0, 10**12])
def test_short_text_and_empty_registry(ratio, monkeypatch):
    monkeypatch.setattr(redaction, "_FIND_RATIO", ratio)
    assert redaction.Registry()._spans("a" * 100) == []
    registry = redaction.Registry()
    registry.plant("abcdefgh")
    assert registry._spans("abcdefg") == []


def test_find_remembers_only_until_something_changes():
    """`find` answers from memory between plants; planting a value, and
    retiring the test's values (after which compressed streams are no longer
    searched), change the answer at once, as a registry with no memory says."""
    import base64
    import gzip

    def fresh(*, retired: bool) -> redaction.Registry:
        registry = redaction.Registry()
        registry.plant(secret)
        if retired:
            registry.end_test()
        return registry

    secret = "tok~abcdefgh1234"
    text = f"x {secret} y"
    packed = base64.b64encode(gzip.compress(f"token={secret}".encode())).decode()
    registry = redaction.Registry()
    assert registry.find(text) == 0 and registry.find(packed) == 0
    assert registry.find(text) == 0  # remembered
    registry.plant(secret)
    assert registry.find(text) == 1 == fresh(retired=False).find(text)
    assert registry.find(packed) == 1 == fresh(retired=False).find(packed)
    registry.end_test()
    assert registry.find(text) == 1 == fresh(retired=True).find(text)
    assert registry.find(packed) == fresh(retired=True).find(packed) == 0
