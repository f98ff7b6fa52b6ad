"""Which decoder claims a channel: built-ins, `dockit.decoders` entry points and `--decoder` classes.

Built-ins and plugins are found the same way (a "module:Class" reference), a broken plugin is reported
and skipped, and detection is by score, not first match (the mitmproxy contentviews way): every
decoder scores the channel's first bytes, a decoder whose well-known port the channel uses gets a bonus,
and `--decode PORT=name` overrides detection for a port. The plaintext of a TLS connection whose
handshake named its protocol (ALPN) goes to the decoder that declares that protocol id.

Each decoder's origin (built-in, which installed distribution, or `--decoder`) and every load failure
are kept, for `dockit decoders`. An entry point's name must be its class's `name` (the name a user types
in `--decode PORT=NAME`): a mismatch is a load failure, not a surprise at run time.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from decoders.api import ChannelInfo, Decoder, Direction

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

log = logging.getLogger("dockit.decoders")

BUILTIN_DECODERS: tuple[str, ...] = (
    "decoders.mysql:MySqlDecoder",
    "decoders.http:HttpDecoder",
    "decoders.tls:TlsDecoder",
    "decoders.tns:TnsDecoder",
    "decoders.amqp:AmqpDecoder",
    "decoders.mqtt:MqttDecoder",
    "decoders.nats:NatsDecoder",
    "decoders.postgres:PostgresDecoder",
    "decoders.http2:Http2Decoder",
    "decoders.dns:DnsDecoder",
    "decoders.redis:RedisDecoder",
)
ENTRY_POINT_GROUP = "dockit.decoders"
PORT_BONUS = 20
MIN_SCORE = 1


def entry_points(group: str) -> list[EntryPoint]:
    """The installed plugins of `group`. importlib.metadata takes about 30 ms to import: it is imported
    when decoders are first needed, not when dockit starts."""
    from importlib.metadata import entry_points as installed

    return list(installed(group=group))


class DecoderLoadError(Exception):
    """A `--decoder` reference that does not name a Decoder class."""


@dataclass(frozen=True)
class Origin:
    """Where a decoder class came from: `kind` is "built-in", "plugin" (an installed distribution's
    `dockit.decoders` entry point) or "--decoder"; `distribution` and `version` name the package."""

    kind: str
    reference: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None


@dataclass(frozen=True)
class LoadFailure:
    """A decoder that could not be loaded, and why (for `dockit decoders` and `-w`)."""

    origin: Origin
    reason: str


def load_reference(reference: str) -> type[Decoder]:
    """Import "module:Class" and check it is a Decoder with a name."""
    module_name, _, class_name = reference.partition(":")
    if not module_name or not class_name:
        raise DecoderLoadError(f"{reference!r} is not of the form module:Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import failure is the plugin's, not ours
        raise DecoderLoadError(f"cannot import {module_name}: {error}") from error
    cls = module
    for part in class_name.split("."):
        if not hasattr(cls, part):
            raise DecoderLoadError(f"{reference}: module {module_name} has no class {class_name}")
        cls = getattr(cls, part)
    return check_decoder_class(cls, reference)


def check_decoder_class(cls: object, reference: str) -> type[Decoder]:
    if not (isinstance(cls, type) and issubclass(cls, Decoder)):
        raise DecoderLoadError(f"{reference} is not a subclass of decoders.api.Decoder")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise DecoderLoadError(f"{reference} has no `name`")
    if getattr(cls.score, "__isabstractmethod__", False) or getattr(cls.feed, "__isabstractmethod__", False):
        raise DecoderLoadError(f"{reference} does not implement score() and feed()")
    ports = getattr(cls, "ports", frozenset())
    if isinstance(ports, (str, bytes)) or not hasattr(ports, "__iter__"):
        raise DecoderLoadError(f"{reference}: `ports` must be a set of port numbers, not {ports!r}")
    if not all(isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 for port in ports):
        raise DecoderLoadError(
            f"{reference}: `ports` must hold port numbers (1 to 65535), not {sorted(map(repr, ports))}"
        )
    return cls


def check_entry_point_name(entry_name: str, cls: type[Decoder], reference: str) -> None:
    """The entry point's name is the decoder's name: `--decode PORT=NAME` and `dockit decoders` use the
    class's `name`, so a package that registers `kv = "pkg:KvDecoder"` for a class named "kvproto" would
    say one thing and do another."""
    if entry_name != cls.name:
        raise DecoderLoadError(
            f"entry point {entry_name!r} names {reference}, whose `name` is {cls.name!r}: "
            f'they must agree (write `{cls.name} = "{reference}"`)'
        )


class Registry:
    """The decoders known to one run, and the port overrides the user gave.

    `default()` imports the built-in decoders and the plugins when a channel first needs one, not when
    dockit starts: most traces of a command such as `ls` have no socket, and importing every decoder
    cost about a quarter of such a replay."""

    def __init__(self, classes: Iterable[type[Decoder]] = (), overrides: dict[int, str] | None = None):
        self._classes: list[type[Decoder]] = []
        self._load: Callable[[], None] | None = None  # what `default` left to load at first use
        self.problems: list[str] = []
        self.failures: list[LoadFailure] = []
        self.tracebacks: list[str] = []  # of the problems above, for -v
        self.origins: dict[type[Decoder], Origin] = {}
        self._score_failures: set[str] = set()  # reported once per decoder, not once per call
        for cls in classes:
            self.add(cls)
        self.overrides = dict(overrides or {})

    @property
    def classes(self) -> list[type[Decoder]]:
        if self._load is not None:
            load, self._load = self._load, None
            load()
        return self._classes

    def add(self, cls: type[Decoder], origin: Origin | None = None) -> None:
        self._classes = [c for c in self.classes if c.name != cls.name] + [cls]
        self.origins[cls] = (
            origin or self.origins.get(cls) or Origin("--decoder", f"{cls.__module__}:{cls.__qualname__}")
        )

    def by_name(self, name: str) -> type[Decoder] | None:
        return next((c for c in self.classes if c.name == name), None)

    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @classmethod
    def default(
        cls, extra: Iterable[str] = (), overrides: dict[int, str] | None = None, plugins: bool = True
    ) -> Registry:
        """Built-ins, then installed plugins, then the `--decoder` references (later ones win a name).
        The references are imported at once, so that a wrong one is a usage error before the trace."""
        registry = cls(overrides=overrides)
        references = [(reference, load_reference(reference)) for reference in extra]

        def load() -> None:
            for reference in BUILTIN_DECODERS:
                registry._add_reference(reference)
            if plugins:
                for entry in entry_points(group=ENTRY_POINT_GROUP):
                    registry._add_entry_point(entry)
            for reference, reference_class in references:
                registry.add(reference_class, Origin("--decoder", reference))

        registry._load = load
        for port, name in registry.overrides.items():
            if registry.by_name(name) is None:
                raise DecoderLoadError(
                    f"--decode {port}={name}: no decoder named {name!r} (known: {', '.join(registry.names())})"
                )
        return registry

    def _add_reference(self, reference: str) -> None:
        try:
            self.add(load_reference(reference), Origin("built-in", reference))
        except DecoderLoadError as error:
            log.debug("built-in decoder %s unavailable: %s", reference, error)
            self.failures.append(LoadFailure(Origin("built-in", reference), str(error)))

    def _add_entry_point(self, entry: EntryPoint) -> None:
        dist = getattr(entry, "dist", None)
        origin = Origin(
            "plugin",
            entry.value,
            distribution=getattr(dist, "name", None),
            version=getattr(dist, "version", None),
            entry_point=entry.name,
        )
        try:
            decoder_class = check_decoder_class(entry.load(), entry.value)
            check_entry_point_name(entry.name, decoder_class, entry.value)
        except Exception as error:  # noqa: BLE001 - one broken plugin must not stop a run
            self.problems.append(f"decoder plugin {entry.name} ({entry.value}) skipped: {error}")
            self.failures.append(LoadFailure(origin, str(error)))
            return
        self.add(decoder_class, origin)

    def choose(self, data: bytes, direction: Direction, channel: ChannelInfo) -> type[Decoder] | None:
        """The decoder for a channel whose first bytes are `data`, or None if nobody claims it."""
        for port in channel.ports:
            forced = self.overrides.get(port)
            if forced:
                return self.by_name(forced)
        if channel.alpn:  # the TLS handshake named the protocol: no guessing
            agreed = next((c for c in self.classes if channel.alpn in c.alpn), None)
            if agreed is not None:
                return agreed
        best: tuple[int, type[Decoder]] | None = None
        for cls in self.classes:
            try:
                score = cls.score(data, direction, channel)
            except Exception as error:  # noqa: BLE001 - a scoring bug is that decoder's, not the run's
                self._score_failed(cls, f"failed to score a channel: {error!r}", error)
                continue
            if type(score) is not int:
                if isinstance(score, float) and score == score:
                    score = int(score)
                else:
                    self._score_failed(cls, f"score returned {score!r:.40}, not a number: taken as 0", None)
                    continue
            if score < MIN_SCORE:
                continue
            if any(port in cls.ports for port in channel.ports):
                score += PORT_BONUS
            if best is None or score > best[0]:
                best = (score, cls)
        return best[1] if best else None

    def _score_failed(self, cls: type[Decoder], message: str, error: BaseException | None) -> None:
        """Reported once per decoder, not once per call; the traceback kept for `-v`."""
        if cls.name in self._score_failures:
            return
        self._score_failures.add(cls.name)
        self.problems.append(f"decoder {cls.name} {message}")
        if error is not None:
            import traceback

            self.tracebacks.append("".join(traceback.format_exception(error)))
