"""Backend options, declared once: one frozen dataclass per backend, every other use derived from it.

A backend's options class (``LocalOptions``, ``HostedOptions``) lists each option as a dataclass field made with
``option(...)``: its default, its check and its help text. From that one declaration come

- the accepted option names (``names()``), used by ``MemReranker`` to accept, ignore or refuse a keyword;
- validation with the typed errors (each field's check, run by ``__post_init__``, then ``check_together``);
- ``describe()``: every value in force, defaults included, secrets only as ``<name>_set``, each value as its
  ``show`` says (for ``repr`` and logs);
- ``settings()``: only what the user gave, never a default and never a secret (the one thing serialized);
- the command line's flags (``memreranker_core.cli.backend_args``), from ``cli`` and ``help``;
- the option tables of the docs (``memreranker_core.backends.option_docs``), from the default and ``help``;
- the typed keywords of ``MemReranker`` (``memreranker_core.backends.keywords``), checked against the fields.

What the user gave is the declared field ``given`` (not an option: neither shown nor serialized),
so ``dataclasses.replace``, ``==`` and ``settings()`` agree: an option whose value differs from its default counts
as given too, however it was set.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, repr=False)  # repr=False: the base's repr, which never shows a secret
    ... class DemoOptions(BackendOptions):
    ...     retries: int = option(3, check=lambda name, value: whole_number(name, value, minimum=0), help="retries")
    >>> DemoOptions.from_given({"retries": 5}).settings()
    {'retries': 5}
    >>> DemoOptions.from_given({}).describe(), DemoOptions.from_given({}).settings()
    ({'retries': 3}, {})
    >>> from dataclasses import replace
    >>> replace(DemoOptions.from_given({}), retries=1).settings()
    {'retries': 1}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from memreranker_core.errors import ConfigurationError

#: The key under which ``option`` stores its ``OptionSpec`` in a dataclass field's metadata.
SPEC_KEY = "memreranker_option"

Check = Callable[[str, Any], Any]
Show = Callable[[Any], Any]
OptionsT = TypeVar("OptionsT", bound="BackendOptions")


@dataclass(frozen=True)
class OptionSpec:
    """What one option is, besides its name and default.

    Attributes:
        help: One line for ``--help`` and docs.
        check: ``check(name, value) -> value``: the value as stored, or ``ConfigurationError``. Not run on ``None``.
        secret: Never shown or serialized (``describe`` says only whether it is set).
        cli: Whether the command line has a flag for it.
        cli_type: The flag's argument type: ``str``, ``int``, ``float`` or ``bool`` (a store-true flag).
        choices: The accepted values, for the flag and the message.
        show: ``show(value) -> shown``: how a set value appears in ``describe()`` and ``repr`` (for example a URL
            without the query string that may carry a token); ``None`` shows it as stored. Never applied to
            ``settings()``, which serializes the value itself. A secret is never shown at all.

    Example:
        >>> spec = OptionSpec(help="service URL", show=lambda url: url.split("?")[0])
        >>> spec.show("https://host/v1?token=abc")
        'https://host/v1'
    """

    help: str
    check: Check | None = None
    secret: bool = False
    cli: bool = True
    cli_type: type = str
    choices: tuple[str, ...] | None = None
    show: Show | None = None


def option(
    default: Any = None,
    *,
    help: str,
    check: Check | None = None,
    secret: bool = False,
    cli: bool = True,
    cli_type: type = str,
    choices: tuple[str, ...] | None = None,
    show: Show | None = None,
) -> Any:
    """A dataclass field declaring one backend option (see the module's example and ``OptionSpec``)."""
    if choices is not None and check is None:
        check = one_of(choices)
    spec = OptionSpec(help=help, check=check, secret=secret, cli=cli, cli_type=cli_type, choices=choices, show=show)
    return field(default=default, metadata={SPEC_KEY: spec})


@dataclass(frozen=True, repr=False)
class BackendOptions:
    """Base of the frozen options dataclasses. Subclasses declare fields with ``option`` and may override
    ``check_together`` for checks that involve several options.

    Attributes:
        given: The names of the options the user gave (keyword-only; not an option). ``from_given`` sets it; on
            any construction, ``None`` values are dropped from it and every option whose value differs from its
            default is added, so ``dataclasses.replace(options, name=value)`` counts ``name`` as given.

    Example:
        >>> @dataclass(frozen=True, repr=False)
        ... class DemoOptions(BackendOptions):
        ...     retries: int = option(3, check=whole(0), help="retries")
        >>> DemoOptions.from_given({"retries": 3}) == DemoOptions.from_given({})  # same values, not the same settings
        False
        >>> DemoOptions(retries=5).given
        frozenset({'retries'})
    """

    #: The backend's name, for messages ("local", "hosted").
    BACKEND: ClassVar[str] = ""

    given: frozenset[str] = field(default=frozenset(), repr=False, kw_only=True)

    def __post_init__(self) -> None:
        specs = self.specs()
        for name, (_default, spec) in specs.items():
            value = getattr(self, name)
            if spec.check is not None and value is not None:
                object.__setattr__(self, name, spec.check(name, value))
        given = frozenset(self.given)
        unknown = sorted(given - specs.keys())
        if unknown:
            raise ConfigurationError(f"given: {unknown} are not {self.BACKEND} options; known: {sorted(specs)}")
        changed = {name for name, (default, _spec) in specs.items() if getattr(self, name) != default}
        object.__setattr__(
            self, "given", frozenset(name for name in given | changed if getattr(self, name) is not None)
        )
        self.check_together()

    def check_together(self) -> None:
        """Checks that involve more than one option; raise ``ConfigurationError``."""

    # ----------------------------------------------------------------- declaration
    @classmethod
    def specs(cls) -> dict[str, tuple[Any, OptionSpec]]:
        """``{name: (default, spec)}`` of every option, in declaration order."""
        found = {}
        for item in fields(cls):
            spec = item.metadata.get(SPEC_KEY)
            if spec is not None:
                default = item.default if item.default is not MISSING else None
                found[item.name] = (default, spec)
        return found

    @classmethod
    def names(cls) -> frozenset[str]:
        """The option names this backend accepts."""
        return frozenset(cls.specs())

    @classmethod
    def from_given(cls: type[OptionsT], given: Mapping[str, Any]) -> OptionsT:
        """Build the options from what the user gave; ``None`` values count as not given.

        Raises:
            ConfigurationError: An unknown name, or a value its check refuses.
        """
        unknown = sorted(set(given) - cls.names())
        if unknown:
            raise ConfigurationError(f"unknown {cls.BACKEND} option(s) {unknown}; known: {sorted(cls.names())}")
        values = {name: value for name, value in given.items() if value is not None}
        return cls(**values, given=frozenset(values))

    # ----------------------------------------------------------------- views
    def settings(self) -> dict[str, Any]:
        """Only what the user gave, as given (checked), without secrets: what serialization writes."""
        specs = self.specs()
        return {name: getattr(self, name) for name in specs if name in self.given and not specs[name][1].secret}

    def describe(self) -> dict[str, Any]:
        """Every option in force, defaults included; a secret appears only as ``<name>_set``, any other value as
        its option's ``show`` says."""
        shown: dict[str, Any] = {}
        for name, (_default, spec) in self.specs().items():
            value = getattr(self, name)
            if spec.secret:
                shown[f"{name}_set"] = value is not None
            else:
                shown[name] = spec.show(value) if spec.show is not None and value is not None else value
        return shown

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in self.describe().items())
        return f"{type(self).__name__}({shown})"


# --------------------------------------------------------------------- checks
def check_bool(name: str, value: Any) -> bool:
    """``value``, or ``ConfigurationError`` unless it is exactly True or False."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{name} must be True or False, not {value!r}")
    return value


def non_negative(name: str, value: Any) -> float:
    """``value`` as a float, or ``ConfigurationError`` unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name} must be a number >= 0, not {value!r}")
    return float(value)


def positive_seconds(name: str, value: Any) -> float:
    """``value`` as a float, or ``ConfigurationError`` unless it is a number of seconds > 0."""
    number = non_negative(name, value)
    if number <= 0:
        raise ConfigurationError(f"{name} must be a number of seconds > 0, not {value!r}")
    return number


def whole_number(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value``, or ``ConfigurationError`` unless it is a whole number in [``minimum``, ``maximum``]
    (``True`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"{name} must be a whole number <= {maximum}, not {value!r}")
    return value


def at_most(check: Check, maximum: float, unit: str = "") -> Check:
    """A check for ``option``: ``check``, then no more than ``maximum`` (a bound that catches a typo).

    Example:
        >>> at_most(positive_seconds, 3600, " seconds")("read_timeout", 30)
        30.0
    """

    def bounded(name: str, value: Any) -> Any:
        checked = check(name, value)
        if checked > maximum:
            raise ConfigurationError(f"{name} must be at most {maximum:g}{unit}, not {value!r}")
        return checked

    return bounded


def whole(minimum: int = 1, maximum: int | None = None) -> Check:
    """A check for ``option``: a whole number in [``minimum``, ``maximum``]."""
    return lambda name, value: whole_number(name, value, minimum, maximum)


def text(name: str, value: Any) -> str:
    """``value`` stripped, or ``ConfigurationError`` unless it is a non-blank string."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} must be a non-empty string, not {value!r}")
    return value.strip()


def one_of(choices: tuple[str, ...]) -> Check:
    """A check for ``option``: one of ``choices`` (case-insensitive, stored lower case)."""

    def check(name: str, value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise ConfigurationError(f"{name} must be one of {list(choices)}, not {value!r}")

    return check


_SECRET_GETTERS = ("get_secret_value", "resolve_value")  # pydantic SecretStr, Haystack Secret


def check_secret(name: str, value: Any) -> Any:
    """A secret: a string, or a secret object (pydantic ``SecretStr``, Haystack ``Secret``), kept as given."""
    if isinstance(value, str) or any(callable(getattr(value, method, None)) for method in _SECRET_GETTERS):
        return value
    raise ConfigurationError(
        f"{name} must be a string or a secret (pydantic SecretStr, Haystack Secret), not {type(value).__name__}"
    )


def secret_text(value: Any) -> str | None:
    """The text of a secret given as a string or a secret object; ``None`` when unset or unresolvable."""
    if value is None or isinstance(value, str):
        return value
    for method in _SECRET_GETTERS:
        getter = getattr(value, method, None)
        if callable(getter):
            resolved = getter()
            return resolved if isinstance(resolved, str) else None
    return None
