"""run.sh: the exact atc, aoe, msame / ais_bench command lines of a bundle, for a human to run on an Ascend host.

Built from the manifest alone, so it can be rewritten whenever an entry is added. Every tool's command comes from
a variable (ATC, AOE, MSAME, AIS_BENCH) defaulting to the usual command, and the script checks up front that each
tool it needs can run, naming the missing one and its variable.
"""
from __future__ import annotations

import shlex
from typing import Any, Mapping, Sequence

from porter_ascend310.runners import RUNNERS


def _line(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


SCRIPT_HEADER = """\
#!/usr/bin/env bash
# Written by porter (ascend310 plugin), bundle format {version}. Run it on an Ascend host:
#     bash run.sh
# or name tools that are not on PATH (msame is usually built into tools/msame/out/):
#     ATC=/path/to/atc MSAME=/path/to/tools/msame/out/msame AIS_BENCH="python3 -m ais_bench" bash run.sh
# It compiles each model with atc (skipped when its .om exists) and runs msame / ais_bench over the inputs,
# writing into outputs/. Then copy this whole folder back and run:  porter score <this folder>
set -euo pipefail
# ais_bench refuses files and folders that are group- or other-writable: create none, and fix copied ones
umask 022
cd "$(dirname "$0")"
chmod -R go-w . 2>/dev/null || true
if ! command -v "${{ATC:-atc}}" >/dev/null 2>&1; then
  for env_script in "${{ASCEND_TOOLKIT_HOME:-/usr/local/Ascend/ascend-toolkit/latest}}/set_env.sh" \\
                    /usr/local/Ascend/ascend-toolkit/set_env.sh; do
    if [ -f "$env_script" ]; then set +u; source "$env_script"; set -u; break; fi
  done
fi
# have NAME VARIABLE COMMAND...: is the tool's command runnable here? (python3 -m X: can python3 import X?)
have() {{
  local name=$1 variable=$2; shift 2
  if [ "${{2:-}}" = "-m" ]; then
    "$1" -c "import $3" >/dev/null 2>&1 && return 0
  elif command -v "$1" >/dev/null 2>&1; then
    return 0
  fi
  echo "run.sh: $name not found (tried: $*); install it or name it: $variable=/path/to/$name bash run.sh" >&2
  return 1
}}
"""

# the tools a bundle runs: the variable that names each, and its command where the variable is unset
SCRIPT_TOOLS = {"atc": ("ATC", "atc"), "aoe": ("AOE", "aoe"),
                **{r.name: (r.script_variable, r.script_default) for r in RUNNERS.values()}}


def _tool_line(tool: str, argv: Sequence[str]) -> str:
    """``"${MSAME_CMD[@]}" --model ...``: the tool's words from its variable, then the recorded arguments."""
    variable, default = SCRIPT_TOOLS[tool]
    return f'"${{{variable}_CMD[@]}}" ' + _line(list(argv)[len(default.split()):])


def build_script(manifest: Mapping[str, Any]) -> str:
    lines = [SCRIPT_HEADER.format(version=manifest["format_version"])]
    needed = []
    for model in manifest["models"]:
        if not model["om_ready"]:
            needed += (["aoe"] if model.get("aoe_argvs") else []) + ["atc"]
    needed += [run.get("tool") or run["layout"]["runner"] for run in manifest["runs"]]
    needed = [tool for tool in SCRIPT_TOOLS if tool in needed]
    for tool in needed:
        variable, default = SCRIPT_TOOLS[tool]
        lines.append(f'read -r -a {variable}_CMD <<< "${{{variable}:-{default}}}"')
    if needed:
        lines.append("missing=0")
        for tool in needed:
            variable = SCRIPT_TOOLS[tool][0]
            lines.append(f'have {tool} {variable} "${{{variable}_CMD[@]}}" || missing=1')
        lines.append('[ "$missing" = 0 ] || exit 127')
    for model in manifest["models"]:
        lines.append(f"\n# model {model['key']}")
        if model["om_ready"]:
            lines.append(f"# {model['om']} was compiled by porter; nothing to do")
            continue
        lines.append(f"if [ ! -s {shlex.quote(model['om'])} ]; then")
        for aoe in model.get("aoe_argvs") or []:
            lines.append(f"  {_tool_line('aoe', aoe)}")
        lines.append(f"  {_tool_line('atc', model['atc_argv'])}")
        lines.append("fi")
    for run in manifest["runs"]:
        tool = run.get("tool") or run["layout"]["runner"]
        lines.append(f"\n# run {run['key']}: model {run['model']}, {len(run['sample_ids'])} samples, "
                     f"{tool} {run['layout']['outfmt']}")
        lines.append(f"mkdir -p {shlex.quote(run['output_dir'])}")
        lines.append(f"{_tool_line(tool, run['argv'])} 2>&1 | tee {shlex.quote(run['log'])}")
    lines.append("\necho \"porter bundle: all commands finished; copy this folder back and run: "
                 "porter score <folder>\"")
    return "\n".join(lines) + "\n"



__all__ = ["build_script", "SCRIPT_TOOLS"]
