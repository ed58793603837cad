"""The connector registry: each ERP source and marketing destination declares itself once.

A connector package holds one ``SourceConnector`` or ``DestinationConnector`` and registers it
with one entry point (group ``order_export.sources`` or ``order_export.destinations``, the
object as its value). In-tree connectors register the same way, in ``pyproject.toml``.
Settings loading, validation, the form, the saved file's comments, secrets, wiring, the status
panel and the reload logic read the declarations from here; nothing else names a connector.

Importing this module imports no connector: the entry points are read on first use, and a
connector's ``factory`` (what builds the working source or destination) only when it is built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from order_export_tui.settings.checks import Rule

if TYPE_CHECKING:
    from order_export_tui.settings.model import Settings

SOURCES_GROUP = "order_export.sources"
DESTINATIONS_GROUP = "order_export.destinations"
SOURCES_TABLE = "erp"  # [erp]: `source`, then the sources' keys and tables
DESTINATIONS_TABLE = "destination"  # [destination]: `app`; the destinations' tables follow it

SectionT = TypeVar("SectionT")


@dataclass(frozen=True)
class Required:
    """A key (of the connector's section) that must not be empty while the connector is
    chosen; with ``when``, only while ``when(section)`` holds (``condition`` says when, as in
    ``required when erp.source = "x" and no token_url``; ``reads`` are the keys it reads)."""

    key: str
    when: Callable[[Any], bool] | None = None
    condition: str = ""
    reads: tuple[str, ...] = ()


@dataclass(frozen=True)
class Secret:
    """An ``*_env`` key of the section: the environment variable holding a secret the
    connector needs while it is chosen (with ``when``, only while ``when(section)`` holds)."""

    key: str
    when: Callable[[Any], bool] | None = None


Fact = tuple[str, str]  # (label, value): "store", "shop-1"; an empty label shows the value alone


@dataclass(frozen=True)
class Connector(Generic[SectionT]):
    """One source or destination as the settings, the screen and the wiring know it.

    ``section`` is the TOML table of its keys: ``"erp.<table>"`` for a source (``"erp"`` to
    keep its keys in the [erp] table itself), a top-level ``"<table>"`` for a destination.
    ``settings`` is its dataclass (every field a key with a default); ``rules`` and
    ``descriptions`` cover every key. ``factory`` builds the working object: a callable, or
    ``"module:attribute"`` imported only then (sources get ``(settings, retrier)``,
    destinations ``(settings)``).
    """

    kind: ClassVar[str] = ""

    name: str
    section: str
    settings: type[SectionT]
    factory: str | Callable[..., Any] = field(repr=False)
    rules: Mapping[str, Rule] = field(repr=False)
    descriptions: Mapping[str, str] = field(repr=False)
    summary: str = ""  # in the erp.source / destination.app description: "embedded SQLite ERP"
    table_description: str = ""  # the comment above its table in the saved file
    title: str = ""  # how the status panel names it; its name when ""
    required: tuple[Required, ...] = ()
    secrets: tuple[Secret, ...] = ()
    restart_keys: tuple[str, ...] = ()  # keys a running process applies only on a restart
    file_keys: tuple[str, ...] = ()  # keys naming a file it reads or writes (path checks)
    status_facts: Callable[[SectionT, Settings], list[Fact]] = field(
        default=lambda section, settings: [], repr=False
    )
    order: int = 100  # where it is listed: lower first, then by name

    @property
    def flat(self) -> bool:
        """Its keys sit in its kind's own table ([erp] / [destination]), not a table of its own."""
        return self.section == self.parent_table

    @property
    def parent_table(self) -> str:
        return SOURCES_TABLE if self.kind == "source" else DESTINATIONS_TABLE

    def key(self, name: str) -> str:
        """The dotted settings key of one of its keys."""
        return f"{self.section}.{name}"

    def key_names(self) -> list[str]:
        return [field.name for field in dataclasses.fields(self.settings)]  # type: ignore[arg-type]

    def section_of(self, settings: Settings) -> SectionT:
        """Its settings in ``settings`` (typed)."""
        holder = settings.erp if self.kind == "source" else settings
        return holder.sections[self.name]  # type: ignore[no-any-return]

    def build(self, *args: Any) -> Any:
        return load_factory(self.factory)(*args)


@dataclass(frozen=True)
class SourceConnector(Connector[SectionT]):
    kind: ClassVar[str] = "source"


@dataclass(frozen=True)
class DestinationConnector(Connector[SectionT]):
    """``identity``: which account (and collection, store, file...) its settings send to, as
    ``"<name>:<account>"``, never a secret: the state keeps what each identity confirmed, so
    switching to another account starts a fresh copy. None: the name and a hash of the
    section's non-secret keys (`identity_of`)."""

    kind: ClassVar[str] = "destination"

    identity: Callable[[SectionT, Settings], str] | None = field(default=None, repr=False)


def load_factory(factory: str | Callable[..., Any]) -> Callable[..., Any]:
    """The factory itself: ``"package.module:Class.method"`` is imported here."""
    if callable(factory):
        return factory
    module_name, _, attributes = factory.partition(":")
    target: Any = importlib.import_module(module_name)
    for attribute in attributes.split(".") if attributes else ():
        target = getattr(target, attribute)
    return target  # type: ignore[no-any-return]


# --- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    sources: tuple[SourceConnector[Any], ...]
    destinations: tuple[DestinationConnector[Any], ...]
    # Entry points that could not be used: (group, name) -> why, in one line.
    broken: Mapping[tuple[str, str], str]

    def all(self) -> Iterator[Connector[Any]]:
        yield from self.sources
        yield from self.destinations

    def problems(self) -> list[str]:
        """One line per entry point that could not be loaded."""
        return [
            f"connector {name!r} ({group}) cannot be loaded: {why}"
            for (group, name), why in self.broken.items()
        ]


_KINDS: dict[str, type[Connector[Any]]] = {
    SOURCES_GROUP: SourceConnector,
    DESTINATIONS_GROUP: DestinationConnector,
}


@cache
def registry() -> Registry:
    """Every connector the installed packages register (read once; see ``refresh``)."""
    broken: dict[tuple[str, str], str] = {}
    found: dict[str, list[Connector[Any]]] = {group: [] for group in _KINDS}
    for group, kind in _KINDS.items():
        seen: set[str] = set()
        for entry in entry_points(group=group):
            connector, why = _load(entry, kind)
            if connector is not None and connector.name in seen:
                why, connector = f"another package already registers {entry.name!r}", None
            if connector is None:
                broken[(group, entry.name)] = why
                continue
            seen.add(connector.name)
            found[group].append(connector)
    ordered = {
        group: sorted(connectors, key=lambda c: (c.order, c.name))
        for group, connectors in found.items()
    }
    return Registry(
        sources=tuple(ordered[SOURCES_GROUP]),  # type: ignore[arg-type]
        destinations=tuple(ordered[DESTINATIONS_GROUP]),  # type: ignore[arg-type]
        broken=broken,
    )


def refresh() -> Registry:
    """Read the entry points again (after a package was installed or put on the path)."""
    registry.cache_clear()
    return registry()


def _load(entry: EntryPoint, kind: type[Connector[Any]]) -> tuple[Connector[Any] | None, str]:
    """The declaration an entry point names, or None and why not (never raises)."""
    where = f"{entry.value}"
    try:
        connector = entry.load()
    except Exception as error:  # a third-party package may be broken in any way
        return None, f"importing {where} failed: {type(error).__name__}: {error}"
    if not isinstance(connector, kind):
        return None, f"{where} is not a {kind.__name__}"
    if connector.name != entry.name:
        return None, f"{where} is named {connector.name!r}, its entry point {entry.name!r}"
    why = _declaration_problem(connector)
    return (None, f"{where}: {why}") if why else (connector, "")


def _declaration_problem(connector: Connector[Any]) -> str:
    if not dataclasses.is_dataclass(connector.settings):
        return "its settings are not a dataclass"
    parent = connector.parent_table
    if connector.kind == "source":
        if not (connector.flat or connector.section.startswith(f"{parent}.")):
            return f'its section must be "{parent}" or "{parent}.<table>"'
        if connector.section.count(".") > 1:
            return f'its section must be "{parent}" or "{parent}.<table>"'
    elif "." in connector.section or connector.flat:
        return "a destination's section must be a top-level table of its own"
    try:
        for key in connector.key_names():
            connector.rules[key]
            connector.descriptions[key]
        connector.settings()
    except KeyError as missing:
        return f"key {missing} has no rule or no description"
    except TypeError as error:
        return f"its settings need a default for every key ({error})"
    return ""


@dataclass(frozen=True, slots=True)
class DestinationIdentity:
    """Which copy of the orders a destination holds: its app and, in `identity`, the app
    plus its account (`dotdigital:<api user>/<collection>`...): what the state database keys
    what was confirmed by. Human readable, never a secret."""

    app: str
    identity: str


def identity_of(connector: DestinationConnector[Any], settings: Settings) -> str:
    """The connector's own identity, else its name and a stable hash of its non-secret keys
    (a change to any of them is another account: a fresh copy)."""
    section = connector.section_of(settings)
    if connector.identity is not None:
        return connector.identity(section, settings)
    secret_keys = {secret.key for secret in connector.secrets}
    values = {
        name: getattr(section, name) for name in connector.key_names() if name not in secret_keys
    }
    text = json.dumps(values, sort_keys=True, default=str)
    return f"{connector.name}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def destination_identity(settings: Settings) -> DestinationIdentity:
    """The configured destination's identity (an app no package registers: its name)."""
    app = settings.destination.app
    connector = destination_connector(app)
    return DestinationIdentity(app, app if connector is None else identity_of(connector, settings))


# --- what the rest of the program asks ---------------------------------------------------------


def source_connector(name: str) -> SourceConnector[Any] | None:
    return next((c for c in registry().sources if c.name == name), None)


def destination_connector(name: str) -> DestinationConnector[Any] | None:
    return next((c for c in registry().destinations if c.name == name), None)


def source_names() -> tuple[str, ...]:
    return tuple(c.name for c in registry().sources)


def destination_names() -> tuple[str, ...]:
    return tuple(c.name for c in registry().destinations)


def chosen(settings: Settings) -> list[Connector[Any]]:
    """The configured source and destination (those that are registered)."""
    found = [source_connector(settings.erp.source), destination_connector(settings.destination.app)]
    return [connector for connector in found if connector is not None]


def destination_key_prefixes() -> tuple[str, ...]:
    """Keys real-time delivery reads when it opens its destination: a change to one reopens it."""
    sections = [f"{c.section}." for c in registry().destinations]
    return (f"{DESTINATIONS_TABLE}.", *sections, "webstore.")


def restart_keys() -> tuple[str, ...]:
    """Connector keys that a running process applies only when it restarts."""
    return tuple(c.key(name) for c in registry().all() for name in c.restart_keys)
