"""The base every service process runs on: settings, logs, metrics, probes, graceful stop.

See docs/runtime.md. Import from here; the submodules are the implementation's layout.
"""

from heron.core.runtime.bus_settings import BusClientSettings, BusConsumerSettings
from heron.core.runtime.health import (
    Check,
    CheckResult,
    FlagCheck,
    Heartbeat,
    Readiness,
    RedisCheck,
)
from heron.core.runtime.logs import configure_logging
from heron.core.runtime.metrics import FrameKey, ServiceMetrics, frame_exemplar, oldest_frame
from heron.core.runtime.redact import redact_url
from heron.core.runtime.service import (
    Service,
    ServiceContext,
    build_context,
    run_service,
    serve,
)
from heron.core.runtime.settings import (
    HelpShown,
    LogSettings,
    MetricsSettings,
    ServiceSettings,
    SettingsError,
    load_settings,
)
from heron.core.runtime.shutdown import (
    EXIT_BAD_SETTINGS,
    EXIT_FAILED,
    EXIT_FATAL,
    EXIT_GRACE_EXPIRED,
    EXIT_OK,
    FatalError,
    Shutdown,
)
from heron.core.runtime.stage import Inputs, Received, Rejection, Stage, Work

__all__ = [
    "EXIT_BAD_SETTINGS",
    "EXIT_FAILED",
    "EXIT_FATAL",
    "EXIT_GRACE_EXPIRED",
    "EXIT_OK",
    "BusClientSettings",
    "BusConsumerSettings",
    "Check",
    "CheckResult",
    "FatalError",
    "FlagCheck",
    "FrameKey",
    "Heartbeat",
    "HelpShown",
    "Inputs",
    "LogSettings",
    "MetricsSettings",
    "Readiness",
    "Received",
    "RedisCheck",
    "Rejection",
    "Service",
    "ServiceContext",
    "ServiceMetrics",
    "ServiceSettings",
    "SettingsError",
    "Shutdown",
    "Stage",
    "Work",
    "build_context",
    "configure_logging",
    "frame_exemplar",
    "load_settings",
    "oldest_frame",
    "redact_url",
    "run_service",
    "serve",
]
