"""The plugin manager: builtins, entry-point plugins and recipe-named modules, loaded the same way.

Environment switches:
- ``PORTER_PLUGINS=a,b``: load only these entry-point plugins (builtins always load).
- ``PORTER_DISABLE_PLUGINS=a,b``: skip these entry-point plugins.
- ``PORTER_TRACE_HOOKS=1``: print every hook call and its result to stderr.
"""
from __future__ import annotations

import importlib
import os
import sys
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from porter import PROJECT_NAME, hookspecs
from porter.errors import InputError
from porter.specs import DatasetSpec, MetricSpec, ModelSpec, PassSpec, TargetSpec

ENTRY_POINT_GROUP = PROJECT_NAME

# The core's own defaults, registered exactly as third-party plugins are.
BUILTIN_PLUGINS = (  # (plugin name, module)
    ("onnxruntime", "porter.builtin.onnxruntime_target"),
    ("onnx_passes", "porter.builtin.onnx_passes"),
    ("generic", "porter.builtin.generic.plugin"),
)

KINDS = ("models", "datasets", "passes", "targets", "metrics")
# what each registration hook must return a list of
SPEC_TYPES: dict[str, type] = {"models": ModelSpec, "datasets": DatasetSpec, "passes": PassSpec,
                               "targets": TargetSpec, "metrics": MetricSpec}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    source: str  # "builtin", "entry point <dist>", "recipe"
    module: str
    version: str


@dataclass
class Registry:
    """Everything plugins contributed, by kind and name, with the plugin that contributed it."""

    specs: dict[str, dict[str, object]] = field(default_factory=lambda: {k: {} for k in KINDS})
    owners: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})

    def get(self, kind: str, name: str):
        return self.specs[kind].get(name)

    def owner(self, kind: str, name: str) -> str:
        return self.owners[kind].get(name, "?")


class PluginSet:
    """A pluggy PluginManager plus what each plugin registered."""

    def __init__(self, pm: pluggy.PluginManager, infos: list[PluginInfo]):
        self.pm = pm
        self.hook = pm.hook
        self.infos = infos
        self.registry = self._collect()
        self._owned: dict[tuple[str, str], pluggy.HookCaller] = {}

    def _collect(self) -> Registry:
        reg = Registry()
        for kind in KINDS:
            hook = getattr(self.pm.hook, f"porter_register_{kind}")
            for impl in hook.get_hookimpls():
                plugin_name = self.pm.get_name(impl.plugin) or "?"
                for spec in _checked_specs(kind, impl.function(), plugin_name):
                    if spec.name in reg.specs[kind]:
                        raise InputError(
                            f"{kind[:-1]} {spec.name!r} is registered twice: by plugin "
                            f"{reg.owners[kind][spec.name]!r} and by plugin {plugin_name!r}"
                        )
                    reg.specs[kind][spec.name] = spec
                    reg.owners[kind][spec.name] = plugin_name
        return reg

    def owned_hook(self, hook_name: str, kind: str, name: str) -> pluggy.HookCaller:
        """Hook ``hook_name`` as implemented by the plugin that registered ``name`` among ``kind`` and by no
        other: a stage for a name goes to its owner, even when another plugin's implementation forgets to return
        None for names it does not own. Cached per (hook, owner)."""
        owner = self.registry.owners[kind].get(name)
        if owner is None:
            raise InputError(f"no plugin registered the {kind[:-1]} {name!r}; known: "
                             f"{', '.join(sorted(self.registry.specs[kind])) or 'none'}")
        caller = self._owned.get((hook_name, owner))
        if caller is None:
            mine = self.pm.get_plugin(owner)
            caller = self.pm.subset_hook_caller(
                hook_name, remove_plugins=[p for p in self.pm.get_plugins() if p is not mine])
            self._owned[(hook_name, owner)] = caller
        return caller

    def version_of(self, plugin_name: str) -> str:
        for info in self.infos:
            if info.name == plugin_name:
                return info.version
        return "?"

    def provides(self, plugin_name: str) -> dict[str, list[str]]:
        return {
            kind: sorted(n for n, owner in self.registry.owners[kind].items() if owner == plugin_name)
            for kind in KINDS
        }


def _checked_specs(kind: str, answer: object, plugin_name: str) -> list:
    """What a plugin's ``porter_register_<kind>`` returned, checked: None or a list of the kind's spec type,
    each with a non-empty string name. Anything else is an error naming the plugin, not a crash later."""
    if answer is None:
        return []
    spec_type = SPEC_TYPES[kind]
    where = f"plugin {plugin_name!r}: porter_register_{kind}"
    if not isinstance(answer, (list, tuple)):
        raise InputError(f"{where} returned {type(answer).__name__} {answer!r:.80}; expected a list of "
                         f"{spec_type.__name__}")
    for index, spec in enumerate(answer):
        if not isinstance(spec, spec_type):
            raise InputError(f"{where} returned {type(spec).__name__} {spec!r:.80} at index {index}; expected "
                             f"{spec_type.__name__} (from porter.api)")
        name = getattr(spec, "name", None)
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"{where} returned a {spec_type.__name__} at index {index} whose name is "
                             f"{name!r}; expected a non-empty string")
    return list(answer)


def _module_version(module: ModuleType) -> str:
    return str(getattr(module, "__version__", None) or getattr(module, "PLUGIN_VERSION", None) or "0")


def _env_list(name: str) -> set[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return {p.strip() for p in raw.split(",") if p.strip()}


def load_plugins(extra_modules=(), *, extra_objects=(), use_entry_points: bool = True) -> PluginSet:
    """Build a plugin manager: builtins, then entry points, then ``extra_modules`` (named by a recipe).

    ``extra_objects`` registers already-imported plugin objects (``(name, obj)`` pairs), as tests do.
    A plugin that fails to import is skipped with a warning naming it, so one broken plugin does not stop every
    command; a module named explicitly by a recipe that fails to import is an error.
    """
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []

    for name, modname in BUILTIN_PLUGINS:
        module = importlib.import_module(modname)
        pm.register(module, name=name)
        infos.append(PluginInfo(name, "builtin", modname, _module_version(module)))

    if use_entry_points:
        allow = _env_list("PORTER_PLUGINS")
        block = _env_list("PORTER_DISABLE_PLUGINS") or set()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if (allow is not None and ep.name not in allow) or ep.name in block or pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # noqa: BLE001 - any import failure of a third-party plugin
                warnings.warn(f"porter: plugin {ep.name!r} ({ep.value}) failed to load and is skipped: {exc}",
                              stacklevel=2)
                continue
            pm.register(module, name=ep.name)
            dist = getattr(ep, "dist", None)
            source = f"entry point ({dist.name} {dist.version})" if dist else "entry point"
            infos.append(PluginInfo(ep.name, source, ep.value, _module_version(module)))

    for modname in extra_modules:
        if pm.has_plugin(modname):
            continue
        try:
            module = importlib.import_module(modname)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"plugin module {modname!r} could not be imported: {exc}", field="plugins") from exc
        pm.register(module, name=modname)
        infos.append(PluginInfo(modname, "recipe", modname, _module_version(module)))

    for name, obj in extra_objects:
        pm.register(obj, name=name)
        infos.append(PluginInfo(name, "registered object", type(obj).__module__, _module_version(obj)))

    pm.check_pending()
    if os.environ.get("PORTER_TRACE_HOOKS"):
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    return PluginSet(pm, infos)
