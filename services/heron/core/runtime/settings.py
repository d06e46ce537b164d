"""Settings every service process shares, read from a file and the environment.

Precedence, highest first: keyword arguments, environment (`HERON_*`, nested with `__`:
`HERON_METRICS__PORT=9400`), the settings file (YAML or JSON, named by `--config FILE` or
`HERON_CONFIG_FILE`), the defaults below. Services subclass `ServiceSettings` to add their own
fields; `load_settings` is the one place that reads them. typer parses the command line (the one
option, `--config`), as it parses every Heron command line; pydantic-settings the rest.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

import typer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError

from heron.core.config.diagnostics import closest
from heron.core.runtime.config_file import SettingsFile, SettingsFileError, read_settings_file
from heron.core.runtime.redact import MASK, redact_text, redact_url

ENV_PREFIX = "HERON_"
ENV_NESTED_DELIMITER = "__"
CONFIG_FILE_ENV = "HERON_CONFIG_FILE"
REDIS_SCHEMES = ("redis", "rediss", "unix")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ENV_JSON_ERROR = re.compile(r'error parsing value for field "(?P<field>[^"]+)" from source')

S = TypeVar("S", bound="ServiceSettings")

# The file being loaded, handed to the settings source below for the duration of one
# `load_settings` call (pydantic-settings builds sources per instantiation, not per call).
_CURRENT_FILE: ContextVar[SettingsFile | None] = ContextVar("heron_settings_file", default=None)


class MetricsSettings(BaseModel):
    """Where the /metrics, /healthz and /readyz endpoint listens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("0.0.0.0", description="Address to bind; 127.0.0.1 keeps it local.")
    port: int = Field(9400, ge=0, le=65535, description="TCP port; 0 = any free port.")


class LogSettings(BaseModel):
    """How the process logs: JSON lines for collectors, or a console format for people."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Lowest level written."
    )
    format: Literal["json", "console"] = Field("json", description="One JSON object a line.")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class ServiceSettings(BaseSettings):
    """Base settings of every Heron service process; subclass to add a service's own fields."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    service_name: str = Field(
        description="Name in logs and metrics: lower-case letters, digits and '-' (a DNS label); "
        "subclasses give it a default.",
    )
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"),
        description="redis://[user:password@]host:port/db, rediss://... or unix:///path.sock; "
        "a secret: only ever logged with its password masked.",
    )
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    shutdown_grace_s: float = Field(
        20.0,
        gt=0,
        description="After SIGTERM, time to finish and ack in-flight work before a forced exit; "
        "keep it below the pod's terminationGracePeriodSeconds.",
    )
    liveness_timeout_s: float = Field(
        30.0, gt=0, description="/healthz fails when the main loop has not ticked for this long."
    )
    startup_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Time allowed before the first tick (model loading) before /healthz fails.",
    )
    readiness_timeout_s: float = Field(
        0.5, gt=0, description="Longest wait of one readiness check (e.g. the Redis PING)."
    )

    # A validator, not Field(pattern=...): a subclass that redeclares `service_name` with its own
    # default replaces the Field, but validators are inherited by name.
    @field_validator("service_name")
    @classmethod
    def _dns_label(cls, name: str) -> str:
        if not _DNS_LABEL.match(name):
            raise ValueError(
                "expected 1-63 lower-case letters, digits or '-', starting and ending with a "
                "letter or digit (a DNS label)"
            )
        return name

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, url: SecretStr) -> SecretStr:
        # Name at most the scheme in the error: the rest of the URL may carry a password.
        raw = url.get_secret_value()
        parts = urlsplit(raw)
        if "://" not in raw or parts.scheme not in REDIS_SCHEMES:
            found = f"scheme {parts.scheme!r}" if "://" in raw else "no 'scheme://'"
            raise ValueError(
                f"expected a URL with scheme {', '.join(REDIS_SCHEMES)}, got {found} "
                "(the value is not shown: it may hold a password)"
            )
        if parts.scheme != "unix" and not parts.hostname:
            raise ValueError("expected a host, as in redis://host:6379/0")
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FileSource(settings_cls), file_secret_settings

    def redacted(self) -> dict[str, Any]:
        """The settings as plain data, fit for a log line: URLs keep their host, lose passwords."""
        return _redacted(self)


def _redacted(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            raw = value.get_secret_value()
            out[name] = redact_url(raw) if "://" in raw else MASK
        elif isinstance(value, BaseModel):
            out[name] = _redacted(value)
        else:
            out[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


class _FileSource(PydanticBaseSettingsSource):
    """The settings file of the current `load_settings` call, below the environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        current = _CURRENT_FILE.get()
        data = current.data if current is not None else {}
        return data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        current = _CURRENT_FILE.get()
        return dict(current.data) if current is not None else {}


class SettingsError(Exception):
    """Settings could not be loaded; the message names each bad field and where it came from."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in self.problems))


class HelpShown(Exception):  # noqa: N818
    """`--help` was asked for and printed: nothing to load or run (exit 0). Not an error."""


# Every service's command line: one option, parsed by typer as every Heron command line is.
_command_line = typer.Typer(rich_markup_mode=None, add_completion=False)


@_command_line.command(context_settings={"help_option_names": ["--help", "-h"]})
def _service(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar=CONFIG_FILE_ENV,
            help="Settings file, YAML or JSON; HERON_* variables override it (docs/runtime.md).",
            show_default=False,
        ),
    ] = None,
) -> Path | None:
    """Run the service. Its settings: HERON_* variables, then the settings file, then the
    defaults (docs/runtime.md)."""
    return config


def config_path_from(argv: Sequence[str]) -> Path | None:
    """The settings file named by `--config FILE`/`-c FILE` (wins) or HERON_CONFIG_FILE, if any.

    Raises SettingsError for any other argument, naming it; HelpShown after printing --help.
    """
    command = typer.main.get_command(_command_line)
    try:
        with command.make_context(_program(), list(argv)) as ctx:
            path = ctx.params["config"]
    except typer.Exit:  # --help, printed
        raise HelpShown from None
    except Exception as e:
        # click's UsageError (typer may bring its own click, so it is told by what it has).
        if not hasattr(e, "format_message"):
            raise
        raise SettingsError([e.format_message()]) from None
    return Path(path) if path else None


def _program() -> str:
    """`python -m heron.<service>` when run so; else the script's name."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None and spec.name.endswith(".__main__"):
        return f"python -m {spec.name.removesuffix('.__main__')}"
    return Path(sys.argv[0]).name or "heron"


def load_settings(cls: type[S], argv: Sequence[str] = (), **init: Any) -> S:
    """Read `cls` from `--config FILE`/HERON_CONFIG_FILE and the environment.

    Raises SettingsError naming every bad field and its source. Keyword arguments override
    everything (tests use them); services pass only `argv`.
    """
    env = os.environ
    path = config_path_from(argv)
    try:
        file = read_settings_file(path) if path is not None else None
    except SettingsFileError as e:
        raise SettingsError([str(e)]) from None
    token = _CURRENT_FILE.set(file)
    try:
        return cls(**init)
    except ValidationError as e:
        raise SettingsError([_describe(cls, err, env, file, init) for err in e.errors()]) from None
    except PydanticSettingsError as e:
        # Raised for an environment value that should be JSON (a nested model) and is not.
        m = _ENV_JSON_ERROR.search(str(e))
        if m is None:
            raise SettingsError([redact_text(str(e))]) from None
        field = m["field"]
        raise SettingsError(
            [
                f"{field} (from environment variable {env_name([field])}): expected a JSON "
                f"object, or one variable per field as {env_name([field])}__<FIELD>"
            ]
        ) from None
    finally:
        _CURRENT_FILE.reset(token)


def env_name(loc: Sequence[str]) -> str:
    """The environment variable that sets the field at `loc`: ("metrics", "port") → HERON_..."""
    return ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc).upper()


def _describe(
    cls: type[BaseModel],
    err: Mapping[str, Any],
    environ: Mapping[str, str],
    file: SettingsFile | None,
    init: Mapping[str, Any],
) -> str:
    loc = tuple(str(part) for part in err["loc"])
    field = ".".join(loc)
    source, raw = _source_of(loc, environ, file, init)
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = _unknown_field_message(cls, loc)
    elif err["type"] == "missing":
        where = f"set {env_name(loc)}" + (f" or {field!r} in {file.path}" if file else "")
        return f"{field}: required, not set ({where})"
    got = ""
    if raw is not _NOTHING and not _is_secret(cls, loc):
        got = f", got {redact_text(repr(raw))}"
    return f"{field} (from {source}): {message}{got}"


_NOTHING: Any = object()


def _source_of(
    loc: tuple[str, ...],
    environ: Mapping[str, str],
    file: SettingsFile | None,
    init: Mapping[str, Any],
) -> tuple[str, Any]:
    """Which source gave the value at `loc`, in precedence order, and the raw value it gave."""
    if loc and loc[0] in init:
        return "keyword argument", _dig(init, loc)
    upper = {k.upper(): v for k, v in environ.items()}
    # The longest prefix wins: HERON_METRICS__PORT before a JSON object in HERON_METRICS.
    for n in range(len(loc), 0, -1):
        name = env_name(loc[:n])
        if name in upper:
            raw = upper[name] if n == len(loc) else _NOTHING
            return f"environment variable {name}", raw
    if file is not None:
        value = _dig(file.data, loc)
        if value is not _NOTHING:
            line = file.line_of(loc)
            return (f"{file.path}:{line}" if line else str(file.path)), value
    return "defaults", _NOTHING


def _dig(data: Mapping[str, Any], loc: Sequence[str]) -> Any:
    node: Any = data
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return _NOTHING
        node = node[part]
    return node


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models a field can hold: itself, a union's members (`X | None`), a list's or a
    dict's items."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _models_at(cls: type[BaseModel], loc: Sequence[str]) -> list[type[BaseModel]]:
    """The models that can hold the last element of `loc`. A part that is no field of them (a
    list index, a dict key, a union member's tag) leaves them as they are."""
    models = [cls]
    for part in loc[:-1]:
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if fields:
            models = [m for f in fields for m in _models_in(f.annotation)]
    return models


def _is_secret(cls: type[BaseModel], loc: Sequence[str]) -> bool:
    if not loc:
        return False
    fields = [m.model_fields[loc[-1]] for m in _models_at(cls, loc) if loc[-1] in m.model_fields]
    # SecretStr itself, or inside a union such as `SecretStr | None`.
    return any(f.annotation is SecretStr or SecretStr in get_args(f.annotation) for f in fields)


def _unknown_field_message(cls: type[BaseModel], loc: Sequence[str]) -> str:
    """'unknown setting (did you mean ...?)', with the closest name the models at `loc` have:
    nested ones too, optional or in a list."""
    names = [name for m in _models_at(cls, loc) for name in m.model_fields] if loc else []
    guess = closest(loc[-1], names) if names else None
    hint = f" (did you mean {guess!r}?)" if guess else ""
    return f"unknown setting{hint}"
