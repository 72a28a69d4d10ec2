"""The options model: each backend declares its settings once, and every other use derives from that declaration."""

from __future__ import annotations

import argparse
from dataclasses import FrozenInstanceError, dataclass, replace

import pytest

from memreranker_core import MemReranker
from memreranker_core.backends import BACKENDS, options_class
from memreranker_core.backends.hosted.options import HostedOptions
from memreranker_core.backends.local.options import LocalOptions
from memreranker_core.backends.options import BackendOptions, option, whole
from memreranker_core.cli import build_parser
from memreranker_core.cli.backend_args import add_backend_arguments, option_flags
from memreranker_core.errors import ConfigurationError

SECRET = "sk-options-model-secret-0123456789"


@pytest.mark.parametrize("cls", [LocalOptions, HostedOptions])
def test_options_are_frozen_and_settings_hold_only_what_was_given(cls):
    options = cls.from_given({})
    assert options.settings() == {}
    assert set(options.describe()) >= {name for name, (_d, spec) in cls.specs().items() if not spec.secret}
    with pytest.raises(FrozenInstanceError):
        options.max_retries = 1  # type: ignore[misc]


def test_settings_never_include_a_resolved_default_or_a_secret():
    local = LocalOptions.from_given({"device": "cpu", "token": SECRET})
    assert local.settings() == {"device": "cpu"}
    assert local.describe()["token_set"] is True and SECRET not in repr(local) and SECRET not in str(local.describe())
    hosted = HostedOptions.from_given({"api_key": SECRET, "read_timeout": 5})
    assert hosted.settings() == {"read_timeout": 5.0}
    assert hosted.describe()["connect_timeout"] == 10.0 and SECRET not in repr(hosted)


def test_none_counts_as_not_given():
    assert HostedOptions.from_given({"read_timeout": None, "api_style": None}).settings() == {}


@pytest.mark.parametrize(
    ("cls", "given", "message"),
    [
        (LocalOptions, {"max_lenght": 10}, "unknown local option"),
        (LocalOptions, {"device": "not a device"}, "device must be a device string"),
        (LocalOptions, {"attn_implementation": 3}, "attn_implementation must be a non-empty string"),
        (LocalOptions, {"local_files_only": "yes"}, "local_files_only must be True or False"),
        (HostedOptions, {"read_timeout": 1e9}, "read_timeout must be at most"),
        (HostedOptions, {"max_retries": 1000}, "max_retries must be a whole number <= 20"),
        (HostedOptions, {"max_concurrency": 10**6}, "max_concurrency must be a whole number <= 64"),
        (HostedOptions, {"api_style": "openai"}, "api_style must be one of"),
        (HostedOptions, {"api_key": 12345}, "api_key must be a string or a secret"),
    ],
)
def test_bad_values_are_refused_by_the_declaration(cls, given, message):
    with pytest.raises(ConfigurationError, match=message):
        cls.from_given(given)


def test_a_new_option_is_one_field_and_every_view_follows():
    @dataclass(frozen=True, repr=False)
    class DemoOptions(BackendOptions):
        BACKEND = "demo"
        retries: int = option(3, check=whole(0, 9), cli_type=int, help="demo: retries")
        token: str | None = option(None, secret=True, cli=False, help="demo: a secret")

    assert DemoOptions.names() == {"retries", "token"}
    given = DemoOptions.from_given({"retries": 5, "token": SECRET})
    assert given.settings() == {"retries": 5}
    assert given.describe() == {"retries": 5, "token_set": True}
    with pytest.raises(ConfigurationError, match="retries must be a whole number <= 9"):
        DemoOptions.from_given({"retries": 10})


@pytest.mark.parametrize("cls", [LocalOptions, HostedOptions])
def test_what_was_given_is_a_field_so_replace_equality_and_settings_agree(cls):
    name, other = {LocalOptions: ("batch_tokens", "max_length"), HostedOptions: ("max_retries", "api_style")}[cls]
    value, other_value = {LocalOptions: (256, 4096), HostedOptions: (1, "vllm")}[cls]
    assert replace(cls.from_given({}), **{name: value}).settings() == {name: value}
    both = replace(cls.from_given({other: other_value}), **{name: value})
    assert both.settings() == {other: other_value, name: value}
    default = cls.specs()[other][0]
    explicit, implicit = cls.from_given({other: default}), cls.from_given({})
    assert explicit.settings() != implicit.settings() and explicit != implicit  # same values, different settings
    assert explicit == cls.from_given({other: default}) and hash(explicit) == hash(cls.from_given({other: default}))
    assert "given" not in cls.names() and "given" not in explicit.describe() and "given" not in repr(explicit)


def test_given_keeps_only_set_option_names():
    assert LocalOptions(device="cpu").given == {"device"}  # a value off its default counts as given
    assert LocalOptions(given=frozenset({"device"})).settings() == {}  # a name without a value does not
    with pytest.raises(ConfigurationError, match=r"\['retries'\] are not local options"):
        LocalOptions(given=frozenset({"retries"}))


def test_an_option_says_how_its_value_is_shown_in_describe_and_repr_but_settings_keep_it():
    @dataclass(frozen=True, repr=False)
    class DemoOptions(BackendOptions):
        BACKEND = "demo"
        url: str | None = option(None, show=lambda url: url.split("?")[0] + "?...", help="demo: a URL")

    given = DemoOptions.from_given({"url": "https://host/v1?token=" + SECRET})
    assert given.describe() == {"url": "https://host/v1?..."}
    assert SECRET not in repr(given)
    assert given.settings() == {"url": "https://host/v1?token=" + SECRET}
    assert DemoOptions.from_given({}).describe() == {"url": None}  # show is never applied to an unset value


def test_every_backend_option_with_a_flag_is_on_the_command_line():
    flags = option_flags()
    for name in BACKENDS:
        for option_name, (_default, spec) in options_class(name).specs().items():
            assert (option_name in flags) == spec.cli
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    args = parser.parse_args(["--max-length", "64", "--read-timeout", "2.5", "--local-files-only", "--revision", "v1"])
    assert (args.max_length, args.read_timeout, args.local_files_only, args.revision) == (64, 2.5, True, "v1")
    assert args.batch_tokens is None and args.allow_insecure_http is None  # not given: the core's default applies
    assert "--token" not in build_parser().format_help()  # secrets without a flag stay off the command line


def test_memreranker_settings_round_trip_local_and_hosted():
    local = MemReranker(backend="local", model="/models/x", device="cpu", batch_tokens=256, instruction="Find it")
    assert local.settings() == {
        "backend": "local",
        "model": "/models/x",
        "instruction": "Find it",
        "device": "cpu",
        "batch_tokens": 256,
    }
    assert MemReranker(**local.settings()).settings() == local.settings()
    hosted = MemReranker(backend="hosted", base_url="https://host/v1?x=1", api_key=SECRET, read_timeout=3)
    assert hosted.settings() == {"backend": "hosted", "base_url": "https://host/v1?x=1", "read_timeout": 3.0}
    assert MemReranker(**hosted.settings()).settings() == hosted.settings()
    assert SECRET not in repr(hosted) and SECRET not in str(hosted.describe())


def test_options_of_the_other_backend_are_kept_for_switching_but_never_a_secret():
    rr = MemReranker(backend="local", model="/models/x", base_url="https://host/v1", api_key=SECRET)
    assert rr.settings() == {"backend": "local", "model": "/models/x", "base_url": "https://host/v1"}
    switched = MemReranker(**{**rr.settings(), "backend": "hosted", "model": None})
    assert switched.describe()["base_url"] == "https://host/v1"


def test_an_option_no_backend_knows_is_refused_with_a_suggestion():
    with pytest.raises(ConfigurationError, match=r"'read_timout' \(did you mean 'read_timeout'\?\)"):
        MemReranker(backend="local", read_timout=3)
