"""`bottle_ref.yamltext.dump` writes a top-level mapping entry by entry from
a cache; its text must be the one-piece dump's, byte for byte, every time."""

from hypothesis import given, settings, strategies as st

from bottle_ref import yamltext
from bottle_ref.pipelock import build_config, render_config

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.sampled_from([0.0, -0.0, 1, 1.0, True, "1", "true", "yes", "null", "", " ", "a: b",
                     "- x", "#c", "x\ny", "line\n\n", "é", "🙂", "'q'", '"d"', "x" * 1100]),
    st.text(max_size=30),
)
_data = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=8), st.integers()),
                                            inner, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(st.text(max_size=10), _data, max_size=6))
def test_entry_by_entry_is_the_one_piece_dump(data):
    whole = yamltext._whole(data)
    assert yamltext.dump(data) == whole
    assert yamltext.dump(data) == whole  # again, from the cache


def test_values_equal_in_python_but_not_in_yaml_are_kept_apart():
    for first, second in ((0.0, -0.0), (1, True), (1, 1.0), (0, False)):
        assert yamltext.dump({"k": first}) == yamltext._whole({"k": first})
        assert yamltext.dump({"k": second}) == yamltext._whole({"k": second})
        assert yamltext.dump({"k": first}) != yamltext.dump({"k": second})


def test_a_shared_list_keeps_its_anchor():
    shared = ["a"]
    text = yamltext.dump({"x": shared, "y": shared})
    assert text == yamltext._whole({"x": shared, "y": shared}) == "x: &id001\n- a\ny: *id001\n"


def test_pipelock_yaml_is_unchanged():
    kwargs = dict(allow=["api.anthropic.com", "*.example.org", "x" * 63 + ".com"],
                  passthrough=["chatgpt.com"], listen="0.0.0.0:8888",
                  trusted_domains=["upstream.test"])
    header = render_config(**kwargs).split("\n", 1)[0] + "\n"
    assert render_config(**kwargs) == header + yamltext._whole(build_config(**kwargs))
