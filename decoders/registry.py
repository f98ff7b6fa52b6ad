"""Which decoder claims a channel: built-ins, `dockit.decoders` entry points and `--decoder` classes.

Built-ins and plugins are found the same way (a "module:Class" reference), a broken plugin is reported
and skipped, and detection is by score, not first match (the mitmproxy contentviews way): every
decoder scores the channel's first bytes, a decoder whose well-known port the channel uses gets a bonus,
and `--decode PORT=name` overrides detection for a port.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable
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


def load_reference(reference: str) -> type[Decoder]:
    """Import "module:Class" and check it is a Decoder with a name."""
    module_name, _, class_name = reference.partition(":")
    if not module_name or not class_name:
        raise DecoderLoadError(f"{reference!r} is not of the form module:Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import failure is the plugin's, not ours
        raise DecoderLoadError(f"cannot import {module_name}: {error}") from error
    cls = getattr(module, class_name, None)
    return check_decoder_class(cls, reference)


def check_decoder_class(cls: object, reference: str) -> type[Decoder]:
    if not (isinstance(cls, type) and issubclass(cls, Decoder)):
        raise DecoderLoadError(f"{reference} is not a subclass of decoders.api.Decoder")
    if not isinstance(getattr(cls, "name", None), str) or not cls.name:
        raise DecoderLoadError(f"{reference} has no `name`")
    if getattr(cls.score, "__isabstractmethod__", False) or getattr(cls.feed, "__isabstractmethod__", False):
        raise DecoderLoadError(f"{reference} does not implement score() and feed()")
    return cls


class Registry:
    """The decoders known to one run, and the port overrides the user gave.

    `default()` imports the built-in decoders and the plugins when a channel first needs one, not when
    dockit starts: most traces of a command such as `ls` have no socket, and importing every decoder
    cost about a quarter of such a replay."""

    def __init__(self, classes: Iterable[type[Decoder]] = (), overrides: dict[int, str] | None = None):
        self._classes: list[type[Decoder]] = []
        self._load: Callable[[], None] | None = None  # what `default` left to load at first use
        self.problems: list[str] = []
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

    def add(self, cls: type[Decoder]) -> None:
        self._classes = [c for c in self.classes if c.name != cls.name] + [cls]

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
        references = [load_reference(reference) for reference in extra]

        def load() -> None:
            for reference in BUILTIN_DECODERS:
                registry._add_reference(reference)
            if plugins:
                for entry in entry_points(group=ENTRY_POINT_GROUP):
                    try:
                        registry.add(check_decoder_class(entry.load(), entry.value))
                    except Exception as error:  # noqa: BLE001 - one broken plugin must not stop a run
                        registry.problems.append(f"decoder plugin {entry.name} ({entry.value}) skipped: {error}")
            for reference_class in references:
                registry.add(reference_class)

        registry._load = load
        for port, name in registry.overrides.items():
            if registry.by_name(name) is None:
                raise DecoderLoadError(
                    f"--decode {port}={name}: no decoder named {name!r} (known: {', '.join(registry.names())})"
                )
        return registry

    def _add_reference(self, reference: str) -> None:
        try:
            self.add(load_reference(reference))
        except DecoderLoadError as error:
            log.debug("built-in decoder %s unavailable: %s", reference, error)

    def choose(self, data: bytes, direction: Direction, channel: ChannelInfo) -> type[Decoder] | None:
        """The decoder for a channel whose first bytes are `data`, or None if nobody claims it."""
        for port in channel.ports:
            forced = self.overrides.get(port)
            if forced:
                return self.by_name(forced)
        best: tuple[int, type[Decoder]] | None = None
        for cls in self.classes:
            try:
                score = cls.score(data, direction, channel)
            except Exception as error:  # noqa: BLE001 - a scoring bug is that decoder's, not the run's
                if cls.name not in self._score_failures:
                    self._score_failures.add(cls.name)
                    self.problems.append(f"decoder {cls.name} failed to score a channel: {error!r}")
                continue
            if score < MIN_SCORE:
                continue
            if any(port in cls.ports for port in channel.ports):
                score += PORT_BONUS
            if best is None or score > best[0]:
                best = (score, cls)
        return best[1] if best else None
