"""HostContext holds real tokens on a real host; it must never print them."""

from pathlib import Path

from bottle_api.host import CODEX_AUTH, HostContext, default_state_root


def test_repr_hides_env_and_home_files():
    host = HostContext(env={"ANTHROPIC_TOKEN": "sk-ant-real-XYZ"},
                       home_files={CODEX_AUTH: '{"tokens": {"access_token": "real-abc"}}'})
    text = repr(host)
    assert "sk-ant-real-XYZ" not in text and "real-abc" not in text


def test_expand_user_uses_the_contexts_home():
    host = HostContext(home=Path("/h/ada"))
    assert host.expand_user("~/.ssh/id") == Path("/h/ada/.ssh/id")
    assert host.expand_user("/abs") == Path("/abs")


def test_state_root_follows_xdg():
    assert default_state_root({"XDG_STATE_HOME": "/x"}, Path("/h")) == Path("/x/bottle-ref")
    assert default_state_root({}, Path("/h")) == Path("/h/.local/state/bottle-ref")
