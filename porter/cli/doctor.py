"""``porter doctor``: the toolchains and libraries porter sees on this machine."""
from __future__ import annotations

from porter.plugins import load_plugins
from porter.report.host import host_info, library_versions


def add_parser(sub):
    p = sub.add_parser("doctor", help="show libraries, vendor toolchains and plugins found on this machine")
    p.set_defaults(func=run)


def run(args) -> int:
    plugins = load_plugins()
    host = host_info()
    print(f"host: {host['cpu']} ({host['cores']} cores), {host['platform']}")
    for name, ver in library_versions().items():
        print(f"  {name}: {ver}")
    for answer in plugins.hook.porter_tool_versions():
        for tool, ver in (answer or {}).items():
            print(f"  {tool}: {ver}")
    print(f"plugins: {', '.join(i.name for i in plugins.infos)}")
    return 0
