"""Stage hooks go to the plugin that registered the name, and what registration hooks return is checked."""
from __future__ import annotations

import pytest

from porter import hookimpl
from porter.errors import InputError
from porter.pipeline import run_recipe
from porter.plugins import load_plugins
from porter.specs import DatasetSpec, MetricSpec, ModelSpec, PassSpec, TargetSpec


class Greedy:
    """A throw-away plugin whose stage hooks forget the ``if name != MINE: return None`` guard."""

    __version__ = "1"

    @hookimpl
    def porter_register_models(self):
        return [ModelSpec("greedy_model")]

    @hookimpl
    def porter_register_datasets(self):
        return [DatasetSpec("greedy_data")]

    @hookimpl
    def porter_register_passes(self):
        return [PassSpec("greedy_pass")]

    @hookimpl
    def porter_register_targets(self):
        return [TargetSpec("greedy_target")]

    def _answer(self, what):
        raise AssertionError(f"the greedy plugin was asked to answer {what}, a name it did not register")

    @hookimpl
    def porter_preprocess(self, dataset):
        self._answer(dataset.name)

    @hookimpl
    def porter_export(self, model):
        self._answer(model.name)

    @hookimpl
    def porter_graph_fix(self, graph_pass):
        self._answer(graph_pass.name)

    @hookimpl
    def porter_compile(self, target):
        self._answer(target.name)

    @hookimpl
    def porter_runner(self, target):
        self._answer(target.name)

    @hookimpl
    def porter_run(self, target):
        self._answer(target.name)

    @hookimpl
    def porter_run_reference(self, model):
        self._answer(model.name)

    @hookimpl
    def porter_score(self, model):
        self._answer(model.name)


class Polite:
    """A second throw-away plugin that registers one model and answers only for it."""

    __version__ = "1"

    @hookimpl
    def porter_register_models(self):
        return [ModelSpec("polite_model")]

    @hookimpl
    def porter_export(self, model):
        return "polite's export" if model.name == "polite_model" else None


def test_a_stage_hook_is_called_on_the_plugin_that_registered_the_name():
    # registered last, the greedy plugin is the first pluggy would ask
    plugins = load_plugins(use_entry_points=False, extra_objects=[("polite", Polite()), ("greedy", Greedy())])
    model = type("Config", (), {"name": "polite_model"})()
    with pytest.raises(AssertionError, match="did not register"):
        plugins.hook.porter_export(model=model, inputs=None, workdir=None)  # the broadcast the core no longer uses
    assert plugins.owned_hook("porter_export", "models", "polite_model")(model=model, inputs=None,
                                                                           workdir=None) == "polite's export"
    with pytest.raises(InputError, match="no plugin registered the model 'nobody'"):
        plugins.owned_hook("porter_export", "models", "nobody")


@pytest.mark.slow
def test_a_plugin_without_guards_cannot_answer_a_run_for_another_plugins_names(porter_project):
    recipe = porter_project.base_recipe()
    recipe["graph_fix"] = [{"name": "cleanup"}]
    path = porter_project.write_recipe(recipe)
    report = run_recipe(path, extra_plugins=[("greedy", Greedy())])
    assert [v.status for v in report.variants] == ["ok", "ok"], [v.message for v in report.variants]


def _plugin_returning(kind: str, answer):
    class Bad:
        __version__ = "1"

    setattr(Bad, f"porter_register_{kind}", hookimpl(lambda self: answer))
    return Bad()


@pytest.mark.parametrize("kind, answer, expected", [
    ("models", ModelSpec("ok"), "returned ModelSpec .* expected a list of ModelSpec"),
    ("models", {"name": "mlp2"}, "returned dict .* expected a list of ModelSpec"),
    ("targets", [ModelSpec("oops")], "returned ModelSpec .* at index 0; expected TargetSpec"),
    ("datasets", [DatasetSpec("fine"), "blobs2"], "returned str 'blobs2' at index 1; expected DatasetSpec"),
    ("metrics", [MetricSpec("")], "returned a MetricSpec at index 0 whose name is ''; expected a non-empty string"),
    ("passes", [PassSpec(None)], "returned a PassSpec at index 0 whose name is None; expected a non-empty string"),
])
def test_what_a_registration_hook_returns_is_checked_naming_the_plugin(kind, answer, expected):
    with pytest.raises(InputError, match=f"plugin 'broken': porter_register_{kind} {expected}"):
        load_plugins(use_entry_points=False, extra_objects=[("broken", _plugin_returning(kind, answer))])


def test_registration_hooks_may_return_none_or_a_tuple():
    class Quiet:
        __version__ = "1"

        @hookimpl
        def porter_register_models(self):
            return None

        @hookimpl
        def porter_register_datasets(self):
            return (DatasetSpec("quiet_data"),)

    plugins = load_plugins(use_entry_points=False, extra_objects=[("quiet", Quiet())])
    assert plugins.registry.owner("datasets", "quiet_data") == "quiet"
