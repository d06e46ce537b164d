"""Where a broker is: DeepStream's `msg-broker-conn-str` ("host;port", "host;port;topic" for
Kafka, "host;port;username" for AMQP), with `[message-broker]` keys (inline or in the
`msg-broker-config` file) filling what the string leaves out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr, ValidationError

from heron.core.config.diagnostics import Diagnostics
from heron.core.config.keyfile import read_keyfile
from heron.core.config.models import MessageBroker
from heron.overlay.sinks.base import SinkConfigError


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    extra: str | None = None  # the third field: Kafka's topic, AMQP's user name


def parse_conn_str(value: str, where: str) -> Endpoint:
    parts = [p.strip() for p in value.strip().split(";")]
    if parts and parts[-1] == "":
        parts = parts[:-1]  # "host;port;" as DeepStream samples write it
    if len(parts) < 2 or len(parts) > 3 or not parts[0]:
        raise SinkConfigError(
            f"{where} msg-broker-conn-str: expected 'host;port' or 'host;port;third', got {value!r}"
        )
    try:
        port = int(parts[1])
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise SinkConfigError(
            f"{where} msg-broker-conn-str: expected a port 1-65535 after the host, "
            f"got {parts[1]!r} in {value!r}"
        )
    return Endpoint(parts[0], port, parts[2] if len(parts) == 3 and parts[2] else None)


def read_broker_config(path: Path, where: str) -> MessageBroker:
    """The [message-broker] group of an adapter config file (cfg_redis.txt, cfg_amqp.txt...)."""
    diags = Diagnostics()
    keyfile = read_keyfile(path, diags)
    if diags.errors:
        raise SinkConfigError(f"{where} msg-broker-config: {diags.errors[0]}")
    group = keyfile.groups.get("message-broker")
    if group is None:
        raise SinkConfigError(
            f"{where} msg-broker-config: expected a [message-broker] group in {path}, got "
            f"{sorted(keyfile.groups) or 'no groups'}"
        )
    raw = {k.replace("-", "_"): e.value for k, e in group.entries.items()}
    try:
        return MessageBroker.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]).replace("_", "-") if err["loc"] else "?"
        line = group.entries[key].line if key in group.entries else group.line
        got = "(not shown: a secret)" if key == "password" else repr(err.get("input"))
        message = f"{path}:{line}: [message-broker] {key}: {err['msg']}, got {got}"
        raise SinkConfigError(message) from None


@dataclass(frozen=True)
class BrokerOptions:
    """Everything an adapter needs, resolved from the sink, the config file and [message-broker]."""

    host: str
    port: int
    topic: str
    extra: str | None
    settings: MessageBroker

    @property
    def password(self) -> SecretStr | None:
        return self.settings.password


def resolve(  # noqa: PLR0917 -- DeepStream's keys, one each
    where: str,
    conn_str: str | None,
    topic: str | None,
    config_file: Path | None,
    inline: MessageBroker | None,
    default_port: int,
    *,
    extra_is_topic: bool = False,
) -> BrokerOptions:
    settings = read_broker_config(config_file, where) if config_file else None
    # The sink's own config file wins over the pipeline's [message-broker] group.
    merged = _merge(settings, inline)
    if conn_str:
        endpoint = parse_conn_str(conn_str, where)
    elif merged.hostname:
        endpoint = Endpoint(merged.hostname, merged.port or default_port)
    else:
        raise SinkConfigError(
            f"{where}: expected msg-broker-conn-str ('host;port') or a hostname in "
            "msg-broker-config / [message-broker], got neither"
        )
    chosen = topic or merged.topic or (endpoint.extra if extra_is_topic else None)
    if not chosen:
        raise SinkConfigError(f"{where} topic: expected the topic messages go to, got none")
    return BrokerOptions(endpoint.host, endpoint.port, chosen, endpoint.extra, merged)


def _merge(primary: MessageBroker | None, secondary: MessageBroker | None) -> MessageBroker:
    if primary is None:
        return secondary or MessageBroker()
    if secondary is None:
        return primary
    values = secondary.model_dump(exclude_unset=True) | primary.model_dump(exclude_unset=True)
    return MessageBroker.model_validate(values)
