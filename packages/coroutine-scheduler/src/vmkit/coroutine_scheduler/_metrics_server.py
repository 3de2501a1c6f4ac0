"""The Prometheus plumbing every package shares: the client on demand, the HTTP server and the
command line's ``--metrics-port``/``--metrics-addr`` options.

``prometheus-client`` is an optional extra: :func:`prometheus_client_module` imports it only when
metrics are asked for and otherwise raises :class:`MetricsUnavailableError` naming the extra of
the package it belongs to. What the metrics are (the collectors) lives in each package's
``prometheus`` module; this module only serves them.

This file is the same in the three vmkit packages, byte for byte (a test in
``integration-tests`` compares them): each wheel must install and work alone, so none can
import another's copy. The one thing that differs, the distribution to name in a hint, is
derived from the package this copy sits in.
"""

from __future__ import annotations

import argparse
import enum
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from ._logging import get_logger

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "DEFAULT_ADDR",
    "EXTRA_HINT",
    "DefaultRegistry",
    "MetricsServer",
    "MetricsUnavailableError",
    "add_metrics_options",
    "prometheus_client_module",
    "register",
    "start_metrics_server",
]

_log = get_logger(__name__)

#: Where the exporter listens unless told otherwise: metrics are not for the whole network.
DEFAULT_ADDR: Final = "127.0.0.1"
#: What to install for metrics (``vmkit.async_executor`` is published as vmkit-async-executor).
EXTRA_HINT: Final = (
    f"pip install '{__name__.rsplit('.', 1)[0].replace('.', '-').replace('_', '-')}[prometheus]'"
)


class MetricsUnavailableError(ImportError):
    """prometheus-client is not installed; the message names the extra to install."""


class DefaultRegistry(enum.Enum):
    """The marker for "register with prometheus_client's global REGISTRY"."""

    REGISTRY = "the global prometheus_client.REGISTRY"


def prometheus_client_module() -> Any:
    """The prometheus_client module, or a clear error naming the extra."""
    try:
        import prometheus_client  # optional dependency, loaded on demand
        import prometheus_client.core
    except ImportError as exc:
        raise MetricsUnavailableError(
            f"Prometheus metrics need the prometheus-client package: {EXTRA_HINT}"
        ) from exc
    return prometheus_client


def register(collector: Any, registry: CollectorRegistry | DefaultRegistry | None) -> None:
    """Register ``collector`` with ``registry`` (the global one for the marker; None: nowhere)."""
    client = prometheus_client_module()
    if isinstance(registry, DefaultRegistry):
        client.REGISTRY.register(collector)
    elif registry is not None:
        registry.register(collector)


class MetricsServer:
    """An HTTP server answering ``/metrics`` in a daemon thread; :meth:`stop` ends it.

    Use :func:`start_metrics_server` to create one. Also a context manager.
    """

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def addr(self) -> str:
        """The address listened on."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose when 0 was asked)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The URL of the metrics page."""
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()
        _log.debug("metrics_server_stopped", url=self.url)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_metrics_server(
    port: int = 0,
    addr: str = DEFAULT_ADDR,
    *,
    registry: CollectorRegistry | None = None,
    collectors: Iterable[Any] = (),
) -> MetricsServer:
    """Serve metrics on ``http://addr:port/metrics`` until :meth:`MetricsServer.stop`.

    Serves ``registry`` (the global registry by default), or, when ``collectors`` are given,
    a private registry holding just those (built with ``registry=None``). Port 0 lets the system
    choose a free port (see :attr:`MetricsServer.port`).

    Raises:
        MetricsUnavailableError: prometheus-client is not installed.
        OSError: the address cannot be listened on (the message names it and why).
    """
    client = prometheus_client_module()
    if not 0 <= port <= 65535:
        raise ValueError(f"metrics port must be in 0..65535, got {port}")
    collectors = list(collectors)
    if collectors:
        if registry is not None:
            raise ValueError("give start_metrics_server either registry= or collectors=, not both")
        registry = client.CollectorRegistry()
        for collector in collectors:
            registry.register(collector)
    try:
        server, thread = client.start_http_server(
            port, addr=addr, registry=registry if registry is not None else client.REGISTRY
        )
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from exc
    served = MetricsServer(server, thread)
    _log.info("metrics_server_started", url=served.url)
    return served


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a TCP port, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0..65535, got {value}")
    return value


def add_metrics_options(parser: argparse.ArgumentParser, *, serving: str) -> None:
    """Add ``--metrics-port`` and ``--metrics-addr``; ``serving`` says what and while what
    (for example "metrics on this port while the guest runs")."""
    parser.add_argument(
        "--metrics-port",
        type=_port,
        default=None,
        metavar="PORT",
        help=f"serve Prometheus {serving} (0: any free port)",
    )
    parser.add_argument(
        "--metrics-addr",
        default=DEFAULT_ADDR,
        metavar="ADDR",
        help=f"address of the metrics server (default: {DEFAULT_ADDR})",
    )
