"""``porter doctor``: the host CPU and its speed-deciding features, libraries, vendor tools, and what is missing."""
from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, requires, version

from porter.plugins import load_plugins
from porter.report.host import CPU_FEATURES, CPUINFO, _cpuinfo, cpu_features, host_info, library_versions

_REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*"
                          r"(?:;\s*extra\s*==\s*['\"](?P<extra>[^'\"]+)['\"])?\s*$")


def add_parser(sub):
    p = sub.add_parser("doctor", help="show the CPU and its features, libraries, vendor toolchains and plugins "
                                      "found on this machine, and how to install what is missing")
    p.set_defaults(func=run)


def missing_requirements(dist: str = "porter") -> list[tuple[str, str, str]]:
    """(distribution, why, how to install) for each of porter's requirements (and extras) not installed here."""
    try:
        reqs = requires(dist) or []
    except PackageNotFoundError:
        return []
    out = []
    for text in reqs:
        m = _REQUIREMENT.match(text)
        if not m:
            continue
        try:
            version(m["name"])
        except PackageNotFoundError:
            if m["extra"]:
                out.append((m["name"], f"the '{m['extra']}' extra", f"pip install -e '.[{m['extra']}]'"))
            else:
                out.append((m["name"], "required", f"pip install '{m['name']}{m['spec']}'"))
    return out


def run(args) -> int:
    plugins = load_plugins()
    host = host_info()
    print(f"host: {host['cpu']}, {host['cores']} cores, {host['platform']}")
    model, flags = _cpuinfo()
    if not flags:
        print(f"CPU features: unknown ({CPUINFO} not readable)")
    else:
        print(f"CPU features (flags in {CPUINFO}; they decide which variants are fast here):")
        present = cpu_features(flags)
        for feature in CPU_FEATURES:
            have = [f for f in feature.flags if f in flags]
            mark = "yes" if present[feature.name] else "no "
            seen = f" ({', '.join(have)})" if have else ""
            print(f"  {feature.name:<12} {mark}  {feature.why}{seen}")
    print("libraries:")
    for name, ver in library_versions().items():
        print(f"  {name}: {ver}")
    tools: dict[str, str] = {}
    for answer in plugins.hook.porter_tool_versions():
        tools.update(answer or {})
    if tools:
        print("vendor tools:")
        for tool, ver in tools.items():
            print(f"  {tool}: {ver}")
    print(f"plugins: {', '.join(i.name for i in plugins.infos)}")
    missing = missing_requirements()
    absent_tools = [t for t, v in tools.items()
                    if str(v).strip().lower() in ("not found", "not installed", "missing", "")]
    if missing or absent_tools:
        print("missing:")
        for name, why, how in missing:
            print(f"  {name} ({why}): {how}")
        if absent_tools:
            print(f"  {', '.join(absent_tools)}: not found (as their plugins report); variants that need them are "
                  "skipped, exit 4 unless the recipe sets allow_missing_tools (the plugin's README section says "
                  "how to install them)")
    else:
        print("missing: nothing")
    return 0
