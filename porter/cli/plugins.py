"""``porter plugins``: every plugin, where it came from and what it provides."""
from __future__ import annotations

from porter.plugins import KINDS, load_plugins


def add_parser(sub):
    p = sub.add_parser("plugins", help="list plugins, where they came from and what they provide")
    p.set_defaults(func=run)


def run(args) -> int:
    plugins = load_plugins()
    for info in plugins.infos:
        print(f"{info.name} {info.version} — {info.source}: {info.module}")
        provides = plugins.provides(info.name)
        for kind in KINDS:
            if provides[kind]:
                print(f"    {kind}: {', '.join(provides[kind])}")
        for tool, version in _tool_versions(plugins, info.name).items():
            print(f"    {tool}: {version}")
        hooks = sorted(h.name for h in plugins.pm.get_hookcallers(plugins.pm.get_plugin(info.name)) or [])
        if hooks:
            print(f"    hooks: {', '.join(hooks)}")
    return 0


def _tool_versions(plugins, name: str) -> dict:
    """What this plugin's porter_tool_versions reports (toolchain versions, device, capabilities)."""
    plugin = plugins.pm.get_plugin(name)
    for impl in plugins.hook.porter_tool_versions.get_hookimpls():
        if impl.plugin is plugin:
            return impl.function() or {}
    return {}
