"""pipelock.yaml: rendered in pipelock's own keys, validated like pipelock (PIPELOCK-SCHEMA)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bottle_bundle import pipelock_config
from bottle_ref import pipelock
from bottle_ref.pipelock import (
    PIPELOCK_SCHEMA,
    PipelockConfigError,
    load_config,
    render_config,
    validate_config,
)

HOSTS = st.from_regex(r"\A(\*\.)?[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){1,2}\Z")


def render(**kw) -> str:
    args = {"allow": ["api.example.test"], "passthrough": ["api.example.test"],
            "listen": "0.0.0.0:8888"}
    args.update(kw)
    return render_config(**args)


def rendered_data(**kw) -> dict:
    return yaml.safe_load(render(**kw))


def schema_paths(schema, prefix=""):
    """Every key path the schema admits (list items as [])."""
    if isinstance(schema, Mapping):
        for key, sub in schema.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from schema_paths(sub, path)
    elif isinstance(schema, list):
        yield from schema_paths(schema[0], prefix + "[]")


def data_paths(data, prefix=""):
    if isinstance(data, Mapping):
        for key, sub in data.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from data_paths(sub, path)
    elif isinstance(data, list):
        for item in data:
            yield from data_paths(item, prefix + "[]")


class TestRender:
    def test_rendered_config_validates_against_its_own_schema(self):
        data = rendered_data()
        assert validate_config(data) == []
        assert load_config(render()) == data

    def test_rendered_keys_are_all_pipelock_keys(self):
        allowed = set(schema_paths(PIPELOCK_SCHEMA))
        used = set(data_paths(rendered_data()))
        assert used <= allowed
        # and every key DESIGN §8 names is actually emitted
        for key in ("version", "mode", "api_allowlist", "fetch_proxy.listen",
                    "fetch_proxy.monitoring.max_requests_per_minute", "forward_proxy.enabled",
                    "dlp.patterns", "request_body_scanning.enabled",
                    "request_body_scanning.action", "request_body_scanning.scan_headers",
                    "tls_interception.enabled", "tls_interception.ca_cert",
                    "tls_interception.ca_key", "tls_interception.passthrough_domains"):
            assert key in used, key

    def test_fixed_values(self):
        data = rendered_data(listen="127.0.0.1:8888", max_requests_per_minute=42, mode="strict")
        assert data["forward_proxy"] == {"enabled": True}
        assert data["request_body_scanning"] == {"enabled": True, "action": "block", "scan_headers": True}
        assert data["fetch_proxy"] == {"listen": "127.0.0.1:8888",
                                       "monitoring": {"max_requests_per_minute": 42}}
        assert data["mode"] == "strict"
        tls = data["tls_interception"]
        assert tls["enabled"] is True
        assert (tls["ca_cert"], tls["ca_key"]) == ("/etc/pipelock/ca.pem", "/etc/pipelock/ca-key.pem")

    def test_top_level_key_order_is_stable(self):
        keys = list(rendered_data())
        assert keys == ["version", "mode", "api_allowlist", "fetch_proxy", "forward_proxy",
                        "dlp", "request_body_scanning", "tls_interception"]
        order = list(PIPELOCK_SCHEMA)
        assert keys == sorted(keys, key=order.index)  # pipelock's own (schema.go) order

    def test_deterministic(self):
        assert render(allow=["b.test", "a.test"]) == render(allow=["b.test", "a.test"])

    def test_lists_deduped_keeping_first_occurrence(self):
        data = rendered_data(allow=["b.test", "a.test", "b.test"],
                             passthrough=["chatgpt.com", "*.chatgpt.com", "chatgpt.com"])
        assert data["api_allowlist"] == ["b.test", "a.test"]
        assert data["tls_interception"]["passthrough_domains"] == ["chatgpt.com", "*.chatgpt.com"]

    def test_wildcard_and_apex_both_survive_yaml(self):
        data = rendered_data(passthrough=["chatgpt.com", "*.chatgpt.com"])
        assert data["tls_interception"]["passthrough_domains"] == ["chatgpt.com", "*.chatgpt.com"]

    def test_bad_mode_refused_at_render(self):
        with pytest.raises(PipelockConfigError) as err:
            render(mode="paranoid")
        assert err.value.key == "mode"

    @given(allow=st.lists(HOSTS, min_size=1, max_size=6), passthrough=st.lists(HOSTS, max_size=6))
    def test_any_host_lists_round_trip(self, allow, passthrough):
        data = load_config(render(allow=allow, passthrough=passthrough))
        assert data["api_allowlist"] == list(dict.fromkeys(allow))
        assert data["tls_interception"]["passthrough_domains"] == list(dict.fromkeys(passthrough))


class TestDLP:
    def pattern(self, name):
        (p,) = [p for p in rendered_data()["dlp"]["patterns"] if p["name"] == name]
        return re.compile(p["regex"])

    @pytest.mark.parametrize("name, secret", [
        ("anthropic-api-key", "sk-ant-api03-" + "A" * 40),
        ("openai-api-key", "sk-proj-" + "b1" * 20),
        ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl"),
    ])
    def test_patterns_catch_secrets(self, name, secret):
        assert self.pattern(name).search(f"Authorization: Bearer {secret}")

    @pytest.mark.parametrize("name", ["anthropic-api-key", "openai-api-key", "jwt"])
    def test_patterns_leave_ordinary_headers_alone(self, name):
        assert not self.pattern(name).search("Host: api.example.test\r\nAccept: */*")


class TestValidate:
    def base(self) -> dict:
        return rendered_data()

    @pytest.mark.parametrize("path", [
        ("bogus",),
        ("tls_interception", "passthrough_domain"),
        ("fetch_proxy", "monitoring", "burst"),
    ])
    def test_unknown_key_at_any_level(self, path):
        data = self.base()
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = 1
        problems = validate_config(data)
        assert f"{'.'.join(path)}: unknown key" in problems

    def test_unknown_key_inside_list_item(self):
        data = self.base()
        data["dlp"]["patterns"][0]["bogus"] = "block"
        assert "dlp.patterns[0].bogus: unknown key" in validate_config(data)

    @pytest.mark.parametrize("path, value, expect", [
        (("version",), "1", "version: expected int"),
        (("version",), True, "version: expected int"),
        (("api_allowlist",), "a.test", "api_allowlist: expected a list"),
        (("api_allowlist",), ["a.test", 3], "api_allowlist[1]: expected str"),
        (("fetch_proxy", "monitoring", "max_requests_per_minute"), 1.5,
         "fetch_proxy.monitoring.max_requests_per_minute: expected int"),
        # a negative max_requests_per_minute loads (normalize.go makes it 60
        # before validation); a negative max_data_per_minute does not
        (("fetch_proxy", "monitoring", "max_data_per_minute"), -1,
         "fetch_proxy.monitoring.max_data_per_minute: must be >= 0"),
        (("request_body_scanning", "scan_headers"), "yes", "request_body_scanning.scan_headers: expected bool"),
        (("request_body_scanning", "action"), "strip", "request_body_scanning.action: invalid 'strip'"),
        (("mode",), "lenient", "mode: invalid mode 'lenient': must be strict, balanced, or audit"),
        (("tls_interception",), ["x"], "tls_interception: expected a mapping"),
        (("dlp", "patterns", 0, "regex"), "(unclosed", "dlp.patterns[0].regex: invalid regex (Go RE2)"),
        (("dlp", "patterns", 0, "action"), "block", "dlp.patterns[0].action: only 'warn'"),
    ])
    def test_wrong_types_and_values(self, path, value, expect):
        data = self.base()
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        problems = validate_config(data)
        assert any(p.startswith(expect) for p in problems), problems

    @pytest.mark.parametrize("forward_proxy", [{"enabled": False}, {}, {"enabled": "true"}])
    def test_forward_proxy_must_be_enabled(self, forward_proxy):
        data = self.base()
        data["forward_proxy"] = forward_proxy
        assert any(p.startswith("forward_proxy.enabled: must be true") for p in validate_config(data))

    def test_forward_proxy_absent_is_a_problem(self):
        data = self.base()
        del data["forward_proxy"]
        assert any(p.startswith("forward_proxy.enabled") for p in validate_config(data))

    def test_tls_needs_ca_paths_when_enabled(self):
        # pipelock would default to ~/.pipelock/ca-key.pem; the stand-in has no
        # such default and says so at startup (check_ca_files), not in the pure check
        data = self.base()
        del data["tls_interception"]["ca_key"]
        assert validate_config(data) == []
        assert pipelock_config.check_ca_files(data) == [
            "tls_interception: ca_cert and ca_key must be set (the stand-in has no ~/.pipelock default)"]

    def test_pattern_needs_name_and_regex(self):
        data = self.base()
        data["dlp"]["patterns"].append({"severity": "low"})
        problems = validate_config(data)
        n = len(data["dlp"]["patterns"]) - 1
        assert f"dlp.patterns[{n}].name: required" in problems
        assert f"dlp.patterns[{n}].regex: required" in problems

    def test_root_must_be_mapping(self):
        assert validate_config(["version"]) == ["<root>: expected a mapping, got list"]


class TestLoad:
    def test_unknown_key_raises_value_error_with_path(self):
        text = render().replace("  passthrough_domains:", "  passthrough_domain:")
        with pytest.raises(ValueError, match=r"tls_interception\.passthrough_domain: unknown key") as err:
            load_config(text)
        assert err.value.key == "tls_interception.passthrough_domain"

    def test_duplicate_key_is_refused(self):
        text = render() + "mode: audit\n"
        with pytest.raises(ValueError, match="duplicate key 'mode'"):
            load_config(text)

    def test_invalid_yaml(self):
        with pytest.raises(ValueError, match="line"):
            load_config("version: [1\n")

    def test_empty_text_lacks_forward_proxy(self):
        with pytest.raises(ValueError, match="forward_proxy.enabled"):
            load_config("")

    def test_bundle_validator_needs_only_stdlib_yaml_and_conventions(self):
        # The bundle image's compatible proxy imports the validator on its own.
        from bottle_bundle import pipelock_config

        allowed = {"__future__", "os", "re", "stat", "collections", "typing", "yaml", "re2",
                   "bottle_api.conventions"}
        source = open(pipelock_config.__file__, encoding="utf-8").read()
        imports = re.findall(r"^(?:from|import) ([\w.]+)(?: import (\w+))?", source, re.M)
        names = {m if m.split(".")[0] != "bottle_api" else f"{m}.{n}" for m, n in imports}
        assert all(n.split(".")[0] in allowed or n in allowed for n in names), names
