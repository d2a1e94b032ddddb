"""Recipes: YAML (safe loading only) → a validated Recipe of fully resolved variants."""
from __future__ import annotations

import copy
import importlib.util
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from porter.dask_address import check_address
from porter.errors import InputError, RecipeError
from porter.fsutil import resolve_path
from porter.hashing import file_digest
from porter.options import unknown_name_error, validate_options, yaml_float
from porter.report.verdicts import check_budget, parse_budget
from porter.specs import DatasetConfig, ModelConfig, PassConfig, TargetConfig
from porter.strict_yaml import YamlProblem, load_strict
from porter.suggest import suggest

TOP_LEVEL_KEYS = (
    "name", "description", "plugins", "workspace", "model", "dataset", "graph_fix", "target", "metrics",
    "variants", "check_samples", "allow_missing_tools", "budgets", "executor", "address", "bundle",
)
VARIANT_KEYS = ("reference", "description", "model", "dataset", "graph_fix", "target", "metrics")
SECTION_KEYS = {
    "model": ("name", "options", "export"),
    "dataset": ("name", "options"),
    "target": ("name", "flags"),
}
# names become directory names in workspaces and bundles: keep them to one safe path component
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Variant:
    name: str
    reference: bool
    model: ModelConfig
    dataset: DatasetConfig
    passes: tuple[PassConfig, ...]
    target: TargetConfig | None  # None for the framework reference
    metrics: tuple[str, ...]
    description: str = ""

    @property
    def ported_target(self) -> TargetConfig:
        """The target of a ported variant. Code that reaches here has already refused the reference, so its
        missing target is porter's bug, not the user's."""
        if self.target is None:
            raise ValueError(f"variant {self.name!r} is the framework reference and has no target")
        return self.target


@dataclass(frozen=True)
class Recipe:
    path: Path
    name: str
    digest: str  # sha256 of the recipe file's bytes
    plugins: tuple[str, ...]
    workspace: Path
    variants: tuple[Variant, ...]
    check_samples: int = 4
    allow_missing_tools: bool = False
    budgets: tuple[str, ...] = ()
    executor: str = "local"
    address: str | None = None
    bundle: Path | None = None

    @property
    def reference(self) -> Variant | None:
        return next((v for v in self.variants if v.reference), None)


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """One line for a YAML parse error: where it is and what is wrong (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    return f"malformed YAML{where}: {problem}"


def read_recipe_file(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.y*ml"))[:5]
        raise RecipeError("is a folder, not a recipe file; expected a YAML recipe"
                          + (f" such as {path / found[0]} (found there: {', '.join(found)})" if found else ""),
                          file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError("recipe file not found", file=path) from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"recipe is not UTF-8 text ({exc.reason} at byte {exc.start})", file=path) from None
    except OSError as exc:
        raise RecipeError(f"cannot read the recipe ({exc.strerror or exc}); expected a readable YAML file",
                          file=path) from None
    try:
        data = load_strict(text)
    except YamlProblem as exc:
        raise RecipeError(str(exc), file=path) from None
    except yaml.YAMLError as exc:
        raise RecipeError(describe_yaml_error(exc), file=path) from None
    if data is None:
        raise RecipeError("the recipe is empty; expected a mapping with model, dataset, target and variants",
                          file=path)
    if not isinstance(data, dict):
        raise RecipeError(f"expected a mapping at the top level, got {type(data).__name__}", file=path)
    return data


def _check_keys(section: dict, allowed, *, file, field: str):
    for key in section:
        if key not in allowed:
            raise RecipeError(
                f"unknown key {key!r}{suggest(key, allowed)} (allowed: {', '.join(allowed)})",
                file=file, field=f"{field}.{key}" if field else str(key),
            )


def _merge_section(base: dict | None, override: dict | None, options_key: str) -> dict | None:
    """A variant's section over the recipe's: options merge, unless the variant names another plugin."""
    if override is None:
        return copy.deepcopy(base)
    if base is None or ("name" in override and override["name"] != base.get("name")):
        return copy.deepcopy(override)
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _require_mapping(value, *, file, field: str) -> dict:
    if not isinstance(value, dict):
        raise RecipeError(f"expected a mapping, got {type(value).__name__} {value!r}", file=file, field=field)
    return value


def load_recipe(path, plugins, *, workspace: Path | None = None) -> Recipe:
    """Read and validate a recipe against the registered plugins (a :class:`porter.plugins.PluginSet`)."""
    path = resolve_path(path)
    raw = read_recipe_file(path)
    return validate_recipe(raw, path, plugins, workspace=workspace)


def recipe_plugin_modules(raw: dict, path: Path) -> tuple[str, ...]:
    mods = raw.get("plugins") or []
    if isinstance(mods, str):
        mods = [mods]
    if not isinstance(mods, list) or not all(isinstance(m, str) for m in mods):
        raise RecipeError(f"expected a list of module names, got {mods!r}", file=path, field="plugins")
    for index, module in enumerate(mods):
        _check_module_exists(module, Path(path).parent, file=path, field=f"plugins[{index}]")
    return tuple(mods)


def _check_module_exists(module: str, recipe_dir: Path, *, file, field: str) -> None:
    """A misspelt plugin module is a recipe error with a suggestion, not an ImportError from deep inside."""
    top = module.split(".", 1)[0]
    if not top.isidentifier():
        raise RecipeError(f"bad module name {module!r}; expected a dotted Python module name", file=file, field=field)
    if (recipe_dir / f"{top}.py").is_file() or (recipe_dir / top).is_dir():  # a package, namespace ones too
        return
    try:
        if importlib.util.find_spec(top) is not None:
            return
    except (ImportError, ValueError):
        pass
    nearby = [p.stem for p in recipe_dir.glob("*.py")] + [p.parent.name for p in recipe_dir.glob("*/__init__.py")]
    installed = [m.name for m in pkgutil.iter_modules()]
    raise RecipeError(
        f"plugin module {module!r} not found{suggest(top, nearby + installed)} (expected an importable module or "
        f"a {top}.py next to the recipe, in {recipe_dir})", file=file, field=field)


def validate_recipe(raw: dict, path: Path, plugins, *, workspace: Path | None = None) -> Recipe:
    file = path
    base_dir = path.parent
    reg = plugins.registry
    _check_keys(raw, TOP_LEVEL_KEYS, file=file, field="")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not SAFE_NAME.match(name):
        raise RecipeError(f"bad recipe name {name!r}: expected letters, digits, '_', '-', '.' (no path separators)",
                          file=file, field="name")

    variants_raw = raw.get("variants") or {"default": {}}
    _require_mapping(variants_raw, file=file, field="variants")
    variants = []
    for vname, vraw in variants_raw.items():
        vfield = f"variants.{vname}"
        if not isinstance(vname, str) or not SAFE_NAME.match(vname):
            raise RecipeError(f"bad variant name {vname!r}: expected letters, digits, '_', '-', '.' "
                              "(it becomes a folder name)", file=file, field=vfield)
        vraw = vraw or {}
        _require_mapping(vraw, file=file, field=vfield)
        _check_keys(vraw, VARIANT_KEYS, file=file, field=vfield)
        variants.append(_build_variant(vname, vraw, raw, file=file, base_dir=base_dir, reg=reg))

    refs = [v.name for v in variants if v.reference]
    if len(refs) > 1:
        raise RecipeError(f"more than one reference variant: {', '.join(refs)} (mark at most one)",
                          file=file, field="variants")

    check_samples = raw.get("check_samples", 4)
    if isinstance(check_samples, bool) or not isinstance(check_samples, int) or check_samples < 1:
        raise RecipeError(f"expected a positive int, got {check_samples!r}", file=file, field="check_samples")
    budgets = raw.get("budgets") or []
    if isinstance(budgets, str):
        budgets = [budgets]
    if not isinstance(budgets, list) or not all(isinstance(b, str) for b in budgets):
        raise RecipeError(f"expected a list of budget strings, got {budgets!r}", file=file, field="budgets")
    metric_names = {m for v in variants for m in v.metrics}
    for index, text in enumerate(budgets):
        try:
            check_budget(parse_budget(text), metrics=metric_names, variants=[v.name for v in variants])
        except InputError as exc:
            raise RecipeError(exc.message, file=file, field=f"budgets[{index}]") from None
    executor = raw.get("executor", "local")
    if executor not in ("local", "dask"):
        raise RecipeError(f"bad value {executor!r}{suggest(executor, ('local', 'dask'))} (allowed: local, dask)",
                          file=file, field="executor")
    allow_missing = raw.get("allow_missing_tools", False)
    if not isinstance(allow_missing, bool):
        raise RecipeError(f"expected true or false, got {allow_missing!r}", file=file, field="allow_missing_tools")

    def _path_field(key):
        value = raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise RecipeError(f"expected a path, got {value!r}", file=file, field=key)
        p = Path(value).expanduser()
        return p if p.is_absolute() else resolve_path(base_dir / p, file=file, field=key)

    ws = workspace or _path_field("workspace") or (base_dir / ".porter" / name)
    return Recipe(
        path=path,
        name=name,
        digest=file_digest(path) if path.exists() else "",
        plugins=recipe_plugin_modules(raw, path),
        workspace=resolve_path(ws, file=file, field="workspace"),
        variants=tuple(variants),
        check_samples=check_samples,
        allow_missing_tools=allow_missing,
        budgets=tuple(budgets),
        executor=executor,
        address=check_address(raw.get("address"), base_dir=base_dir, file=file, field="address"),
        bundle=_path_field("bundle"),
    )


def _section(raw_base, raw_variant, key, *, file, vfield):
    base = raw_base.get(key)
    override = raw_variant.get(key)
    if base is not None:
        _require_mapping(base, file=file, field=key)
        _check_keys(base, SECTION_KEYS[key], file=file, field=key)
    if override is not None:
        _require_mapping(override, file=file, field=f"{vfield}.{key}")
        _check_keys(override, SECTION_KEYS[key], file=file, field=f"{vfield}.{key}")
    merged = _merge_section(base, override, key)
    origin = f"{vfield}.{key}" if override is not None else key
    return merged, origin


def _lookup(reg, kind: str, name, *, file, field: str, label: str):
    if not isinstance(name, str):
        raise RecipeError(f"expected a {label} name, got {name!r}", file=file, field=field)
    spec = reg.get(kind, name)
    if spec is None:
        raise unknown_name_error(file=file, field=field, kind=label, name=name, known=reg.specs[kind])
    return spec


def _build_variant(vname, vraw, raw, *, file, base_dir, reg) -> Variant:
    vfield = f"variants.{vname}"
    reference = vraw.get("reference", False)
    if not isinstance(reference, bool):
        raise RecipeError(f"expected true or false, got {reference!r}", file=file, field=f"{vfield}.reference")

    model_raw, mfield = _section(raw, vraw, "model", file=file, vfield=vfield)
    if not model_raw:
        raise RecipeError("a model section is required (name, options, export)", file=file, field="model")
    mspec = _lookup(reg, "models", model_raw.get("name"), file=file, field=f"{mfield}.name", label="model")
    model = ModelConfig(
        name=mspec.name,
        options=validate_options(model_raw.get("options"), mspec.options, file=file, field=f"{mfield}.options",
                                 owner=f"model {mspec.name!r}", base_dir=base_dir),
        export=validate_options(model_raw.get("export"), mspec.export_options, file=file,
                                field=f"{mfield}.export", owner=f"model {mspec.name!r}", base_dir=base_dir,
                                kind="export option"),
    )

    data_raw, dfield = _section(raw, vraw, "dataset", file=file, vfield=vfield)
    if not data_raw:
        raise RecipeError("a dataset section is required (name, options)", file=file, field="dataset")
    dspec = _lookup(reg, "datasets", data_raw.get("name"), file=file, field=f"{dfield}.name", label="dataset")
    dataset = DatasetConfig(
        name=dspec.name,
        options=validate_options(data_raw.get("options"), dspec.options, file=file, field=f"{dfield}.options",
                                 owner=f"dataset {dspec.name!r}", base_dir=base_dir),
    )

    metrics_raw = vraw.get("metrics", raw.get("metrics"))
    mfield_m = f"{vfield}.metrics" if "metrics" in vraw else "metrics"
    if metrics_raw is None:
        metrics_raw = sorted(reg.specs["metrics"])
    if isinstance(metrics_raw, str):
        metrics_raw = [metrics_raw]
    if not isinstance(metrics_raw, list):
        raise RecipeError(f"expected a list of metric names, got {metrics_raw!r}", file=file, field=mfield_m)
    for i, m in enumerate(metrics_raw):
        _lookup(reg, "metrics", m, file=file, field=f"{mfield_m}[{i}]", label="metric")

    if reference:
        if not getattr(mspec, "has_reference", True):
            raise RecipeError(f"model {mspec.name!r} has no framework reference run", file=file,
                              field=f"{vfield}.reference")
        return Variant(vname, True, model, dataset, (), None, tuple(metrics_raw), vraw.get("description", ""))

    passes_raw = vraw.get("graph_fix", raw.get("graph_fix")) or []
    pfield = f"{vfield}.graph_fix" if "graph_fix" in vraw else "graph_fix"
    if not isinstance(passes_raw, list):
        raise RecipeError(f"expected a list of pass names, got {passes_raw!r}", file=file, field=pfield)
    passes = []
    for i, item in enumerate(passes_raw):
        ifield = f"{pfield}[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        _require_mapping(item, file=file, field=ifield)
        _check_keys(item, ("name", "options", "tolerance"), file=file, field=ifield)
        pspec = _lookup(reg, "passes", item.get("name"), file=file, field=f"{ifield}.name", label="graph pass")
        tol = yaml_float(item.get("tolerance", pspec.tolerance))
        if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:  # NaN too
            raise RecipeError(f"expected a non-negative number, got {tol!r}", file=file, field=f"{ifield}.tolerance")
        passes.append(PassConfig(
            name=pspec.name,
            options=validate_options(item.get("options"), pspec.options, file=file, field=f"{ifield}.options",
                                     owner=f"graph pass {pspec.name!r}", base_dir=base_dir),
            tolerance=float(tol),
        ))

    target_raw, tfield = _section(raw, vraw, "target", file=file, vfield=vfield)
    if not target_raw:
        raise RecipeError("a target section is required (name, flags) for a non-reference variant",
                          file=file, field=f"{vfield}.target")
    tspec = _lookup(reg, "targets", target_raw.get("name"), file=file, field=f"{tfield}.name", label="target")
    target = TargetConfig(
        name=tspec.name,
        flags=validate_options(target_raw.get("flags"), tspec.flags, file=file, field=f"{tfield}.flags",
                               owner=f"target {tspec.name!r}", base_dir=base_dir, kind="flag"),
    )
    return Variant(vname, False, model, dataset, tuple(passes), target, tuple(metrics_raw),
                   vraw.get("description", ""))
