"""V3 checkpoints: Lightning-like nesting round trip, restricted unpickling, sidecars, mismatch messages."""
import dataclasses
import enum
import json
import os
import sys
import types
import typing

import pytest
import torch
from torch import nn

from porter.errors import InputError
from porter_deepspeech.checkpoint import build_model, load_checkpoint, save_checkpoint
from porter_deepspeech.labels import V3_LABELS
from porter_deepspeech.model import DeepSpeech, ModelConfig, SpectConfig

torch.set_num_threads(1)

FAKE_PACKAGES = ("omegaconf", "deepspeech_pytorch")


def tiny_model(**kw) -> DeepSpeech:
    torch.manual_seed(1)
    model = DeepSpeech(list(V3_LABELS), ModelConfig(**{"hidden_size": 24, "hidden_layers": 2, **kw}), SpectConfig())
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.6, 1.5)
    return model.eval()


def outputs(model):
    torch.manual_seed(2)
    x = torch.randn(2, 1, 161, 60)
    x[1, :, :, 41:] = 0
    with torch.no_grad():
        return model(x, torch.tensor([60, 41]))


def add_module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        value.__module__ = name
        setattr(module, key, value)
    sys.modules[name] = module
    return module


@pytest.fixture
def fake_v3_packages():
    """Stand-ins for omegaconf and deepspeech_pytorch, present only while a test saves its checkpoint."""
    class DictConfig:
        def __init__(self, content, object_type):
            self.__dict__.update({
                "_metadata": ContainerMetadata(object_type=object_type, ref_type=typing.Any, key_type=typing.Any,
                                               element_type=typing.Any, optional=True, flags={}),
                "_parent": None,
                "_content": {k: (EnumNode(v) if isinstance(v, enum.Enum) else AnyNode(v)) for k, v in content.items()},
            })

    class ContainerMetadata:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class AnyNode:
        def __init__(self, value):
            self.__dict__.update({"_val": value, "_metadata": None, "_parent": None})

    class EnumNode(AnyNode):
        pass

    class RNNType(enum.Enum):
        lstm = nn.LSTM
        rnn = nn.RNN
        gru = nn.GRU

    class SpectrogramWindow(enum.Enum):
        hamming = "hamming"
        hann = "hann"

    @dataclasses.dataclass
    class BiDirectionalConfig:
        rnn_type: RNNType = RNNType.lstm
        hidden_size: int = 1024
        hidden_layers: int = 5

    @dataclasses.dataclass
    class UniDirectionalConfig(BiDirectionalConfig):
        lookahead_context: int = 20

    @dataclasses.dataclass
    class AdamConfig:
        learning_rate: float = 1.5e-4

    class CheckpointHandler:
        pass

    for cls in (DictConfig, ContainerMetadata, AnyNode, EnumNode, RNNType, SpectrogramWindow, BiDirectionalConfig,
                UniDirectionalConfig, AdamConfig, CheckpointHandler):
        cls.__qualname__ = cls.__name__
    add_module("omegaconf")
    add_module("omegaconf.dictconfig", DictConfig=DictConfig)
    add_module("omegaconf.base", ContainerMetadata=ContainerMetadata)
    add_module("omegaconf.nodes", AnyNode=AnyNode, EnumNode=EnumNode)
    add_module("deepspeech_pytorch")
    add_module("deepspeech_pytorch.enums", RNNType=RNNType, SpectrogramWindow=SpectrogramWindow)
    add_module("deepspeech_pytorch.configs")
    add_module("deepspeech_pytorch.configs.train_config", BiDirectionalConfig=BiDirectionalConfig,
               UniDirectionalConfig=UniDirectionalConfig, AdamConfig=AdamConfig)
    add_module("deepspeech_pytorch.checkpoint", CheckpointHandler=CheckpointHandler)
    yield types.SimpleNamespace(**{c.__name__: c for c in (DictConfig, RNNType, SpectrogramWindow,
                                                          BiDirectionalConfig, UniDirectionalConfig, AdamConfig,
                                                          CheckpointHandler)})
    remove_fake_modules()


def remove_fake_modules():
    # only the stand-ins: modules the test imported for real (numpy.fft ...) cannot be loaded twice
    for name in [n for n in sys.modules if n.split(".")[0] in FAKE_PACKAGES]:
        del sys.modules[name]


def lightning_checkpoint(model: DeepSpeech, fake, *, bidirectional=True, rnn="lstm"):
    cfg = model.model_cfg
    model_content = {"rnn_type": fake.RNNType[rnn], "hidden_size": cfg.hidden_size, "hidden_layers": cfg.hidden_layers}
    config_type = fake.BiDirectionalConfig
    if not bidirectional:
        model_content["lookahead_context"] = cfg.lookahead_context
        config_type = fake.UniDirectionalConfig
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return {
        "epoch": 69, "global_step": 7000, "pytorch-lightning_version": "1.2.4",
        "state_dict": model.state_dict(),
        "callbacks": {fake.CheckpointHandler: {"best_model_score": torch.tensor(9.5), "best_model_path": "x.ckpt"}},
        "optimizer_states": [optimizer.state_dict()], "lr_schedulers": [{"gamma": 0.99, "last_epoch": 69}],
        "native_amp_scaling_state": {"scale": 65536.0},
        "hparams_name": "kwargs",
        "hyper_parameters": {
            "labels": list(V3_LABELS),
            "model_cfg": fake.DictConfig(model_content, config_type),
            "precision": 16,
            "optim_cfg": fake.DictConfig({"learning_rate": 1.5e-4}, fake.AdamConfig),
            "spect_cfg": fake.DictConfig({"sample_rate": 16000, "window_size": 0.02, "window_stride": 0.01,
                                          "window": fake.SpectrogramWindow.hamming}, object),
        },
    }


def assert_not_imported():
    assert not any(name.split(".")[0] in FAKE_PACKAGES for name in sys.modules)


@pytest.mark.parametrize("bidirectional,rnn", [(True, "lstm"), (False, "gru")])
def test_lightning_nesting_round_trip(tmp_path, fake_v3_packages, bidirectional, rnn):
    model = tiny_model(bidirectional=bidirectional, rnn_type=rnn, lookahead_context=4)
    path = tmp_path / "v3.ckpt"
    torch.save(lightning_checkpoint(model, fake_v3_packages, bidirectional=bidirectional, rnn=rnn), str(path))
    with pytest.raises(Exception):  # the real safe loader refuses these globals: they are really in the pickle
        torch.load(str(path), weights_only=True)
    expected = outputs(model)
    remove_fake_modules()

    loaded = load_checkpoint(path)
    assert_not_imported()
    assert loaded.labels == list(V3_LABELS)
    assert loaded.model_cfg == ModelConfig(rnn_type=rnn, hidden_size=24, hidden_layers=2,
                                           bidirectional=bidirectional,
                                           lookahead_context=4 if not bidirectional else 20)
    assert loaded.spect_cfg == SpectConfig()
    assert (loaded.epoch, loaded.global_step) == (69, 7000)
    rebuilt = build_model(loaded)
    got = outputs(rebuilt)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


@pytest.mark.filterwarnings("ignore:Couldn't retrieve source code")
def test_legacy_non_zip_serialisation_also_read(tmp_path, fake_v3_packages):
    model = tiny_model()
    path = tmp_path / "legacy.ckpt"
    torch.save(lightning_checkpoint(model, fake_v3_packages), str(path), _use_new_zipfile_serialization=False)
    loaded = load_checkpoint(path)
    assert torch.equal(outputs(build_model(loaded))[0], outputs(model)[0])


def test_save_checkpoint_layout_and_round_trip(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "out.ckpt", model, labels=V3_LABELS, model_cfg=model.model_cfg,
                           spect_cfg=model.spect_cfg, epoch=3, global_step=30, extra={"dev_wer": 12.5})
    raw = torch.load(str(path), weights_only=True)  # plain containers only
    assert set(raw) >= {"epoch", "global_step", "pytorch-lightning_version", "state_dict", "hparams_name",
                        "hyper_parameters"}
    assert set(raw["hyper_parameters"]) == {"labels", "model_cfg", "precision", "optim_cfg", "spect_cfg"}
    assert "optimizer_states" not in raw
    loaded = load_checkpoint(path)
    assert loaded.extra == {"dev_wer": 12.5} and loaded.epoch == 3
    assert torch.equal(outputs(build_model(loaded))[0], outputs(model)[0])
    assert not list(tmp_path.glob(".*tmp*"))


class SystemPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ExecPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('owned')",))


@pytest.mark.parametrize("payload_cls,global_name", [(SystemPayload, "system"), (ExecPayload, "builtins.exec")])
def test_code_execution_payload_refused_and_never_run(tmp_path, payload_cls, global_name):
    marker = tmp_path / "pwned"
    model = tiny_model()
    ckpt = {"state_dict": model.state_dict(), "hyper_parameters": {"labels": list(V3_LABELS),
                                                                     "model_cfg": payload_cls(marker)}}
    path = tmp_path / "evil.ckpt"
    torch.save(ckpt, str(path))
    with pytest.raises(InputError) as err:
        load_checkpoint(path)
    assert "evil.ckpt" in str(err.value) and global_name in str(err.value) and "refused" in str(err.value)
    assert not marker.exists()


def test_global_inside_config_namespace_is_inert(tmp_path):
    """A payload dressed as a config class is recorded as data, never imported or called."""
    marker = tmp_path / "pwned"

    class Disguised:
        def __reduce__(self):
            return (sneaky, (f"touch {marker}",))

    def sneaky(command):
        os.system(command)

    sneaky.__module__ = "deepspeech_pytorch.utils"
    sneaky.__qualname__ = "run"
    add_module("deepspeech_pytorch")
    add_module("deepspeech_pytorch.utils")
    sys.modules["deepspeech_pytorch.utils"].run = sneaky
    try:
        model = tiny_model()
        path = tmp_path / "disguised.ckpt"
        torch.save({"state_dict": model.state_dict(),
                    "hyper_parameters": {"labels": list(V3_LABELS), "model_cfg": {"hidden_size": 24,
                                                                                  "hidden_layers": 2},
                                         "optim_cfg": Disguised()}}, str(path))
    finally:
        remove_fake_modules()
    loaded = load_checkpoint(path)
    assert not marker.exists()
    assert_not_imported()
    assert torch.equal(outputs(build_model(loaded))[0], outputs(model)[0])


def test_truncated_file_is_input_error(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "whole.ckpt", model, labels=V3_LABELS, model_cfg=model.model_cfg,
                           spect_cfg=model.spect_cfg)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.ckpt"):
        load_checkpoint(cut)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(InputError, match="junk.ckpt"):
        load_checkpoint(junk)


def test_mismatched_tensor_is_named(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "m.ckpt", model, labels=V3_LABELS, model_cfg=model.model_cfg,
                           spect_cfg=model.spect_cfg)
    loaded = load_checkpoint(path)
    loaded.model_cfg = dataclasses.replace(loaded.model_cfg, hidden_size=32)
    with pytest.raises(InputError, match=r"m\.ckpt.*rnns\.0\.rnn\.weight_ih_l0.*\[96, 1312\].*\[128, 1312\]"):
        build_model(loaded)
    loaded = load_checkpoint(path)
    loaded.labels = loaded.labels[:-1]
    with pytest.raises(InputError, match=r"fc\.0\.module\.1\.weight"):
        build_model(loaded)
    loaded = load_checkpoint(path)
    loaded.model_cfg = dataclasses.replace(loaded.model_cfg, hidden_layers=3)
    with pytest.raises(InputError, match=r"rnns\.2\..*missing"):
        build_model(loaded)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_plain_state_dict_with_sidecar(tmp_path, suffix):
    model = tiny_model()
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), str(path))
    with pytest.raises(InputError, match="sidecar"):
        load_checkpoint(path)
    config = {"labels": list(V3_LABELS), "model_cfg": {"rnn_type": "lstm", "hidden_size": 24, "hidden_layers": 2},
              "spect_cfg": {"sample_rate": 16000, "window_size": 0.02, "window_stride": 0.01, "window": "hamming"}}
    sidecar = tmp_path / ("weights.pt" + suffix)
    if suffix == ".json":
        sidecar.write_text(json.dumps(config))
    else:
        import yaml
        sidecar.write_text(yaml.safe_dump(config))
    loaded = load_checkpoint(path)
    assert loaded.source_format == "state_dict+sidecar" and loaded.model_cfg.bidirectional
    assert torch.equal(outputs(build_model(loaded))[0], outputs(model)[0])


# --- the globals V3.0's own checkpoints need: collections.defaultdict and _operator.getitem -------------------

def save_with_hparams(tmp_path, name: str, **hparams):
    model = tiny_model()
    path = tmp_path / name
    torch.save({"state_dict": model.state_dict(),
                "hyper_parameters": {"labels": list(V3_LABELS),
                                     "model_cfg": {"hidden_size": 24, "hidden_layers": 2}, **hparams}}, str(path))
    return path, model


def read_raw(path):
    """What the restricted unpickler makes of a file (no config conversion)."""
    from porter_deepspeech.checkpoint import restricted_pickle_module

    return torch.load(str(path), map_location="cpu", pickle_module=restricted_pickle_module, weights_only=False)


class Reduced:
    """Pickles as ``func(*args)``: how a hand-written payload spells a call."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)

    def __call__(self, *args):  # pickle only writes a callable as a REDUCE's function
        raise AssertionError("never called while saving")


def test_typing_generics_and_defaultdicts_read_as_data(tmp_path):
    import collections

    path, model = save_with_hparams(
        tmp_path, "generics.ckpt",
        data_cfg={"ref_type": typing.List[str], "nested": typing.Dict[str, typing.Any],
                  "cache": collections.defaultdict(dict, {"a": {"b": 1}})})
    raw = read_raw(path)["hyper_parameters"]["data_cfg"]
    cache = raw["cache"]
    assert type(cache) is dict and cache == {"a": {"b": 1}}
    with pytest.raises(KeyError):
        cache["missing"]  # a plain dict: no factory to call
    from porter_deepspeech.checkpoint import InertObject, to_plain
    assert issubclass(raw["ref_type"], InertObject)
    assert to_plain(raw["ref_type"]) == "typing.List[str]"
    assert to_plain(raw["nested"]) == "typing.Dict[str, typing.Any]"
    assert torch.equal(outputs(build_model(load_checkpoint(path)))[0], outputs(model)[0])


@pytest.mark.parametrize("subject,kind", [
    ({"system": "x"}, "dict"), ((1, 2), "tuple"), (dict, "type"), (torch.Size([3]), "Size"),
])
def test_getitem_on_a_real_object_refused(tmp_path, subject, kind):
    import operator

    path, _ = save_with_hparams(tmp_path, "getitem.ckpt", optim_cfg=Reduced(operator.getitem, subject, 0))
    with pytest.raises(InputError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert "getitem.ckpt" in message and "_operator.getitem" in message and "refused" in message
    assert f"applied to a {kind}" in message


def test_getitem_on_a_placeholder_instance_refused(tmp_path, fake_v3_packages):
    import operator

    config = fake_v3_packages.DictConfig({"hidden_size": 24}, fake_v3_packages.BiDirectionalConfig)
    path, _ = save_with_hparams(tmp_path, "getitem_instance.ckpt",
                                optim_cfg=Reduced(operator.getitem, config, "_content"))
    remove_fake_modules()
    with pytest.raises(InputError, match=r"_operator\.getitem, applied to a DictConfig, not to a type placeholder"):
        load_checkpoint(path)
    assert_not_imported()


def trap_class(marker):
    """A class in a config namespace whose real subscripting, construction and state all write ``marker``."""
    class Trap:
        def __class_getitem__(cls, item):
            marker.write_text("class_getitem ran")
            return cls

        def __init__(self, *args):
            marker.write_text("init ran")

        def __setstate__(self, state):
            marker.write_text("setstate ran")

    Trap.__qualname__ = "Trap"
    return Trap


def test_subscripted_placeholder_never_reaches_the_real_class(tmp_path):
    """getitem on a config-namespace class, and a REDUCE through the subscripted result, touch only inert data."""
    import operator

    marker = tmp_path / "pwned"
    trap = trap_class(marker)
    add_module("deepspeech_pytorch")
    add_module("deepspeech_pytorch.evil", Trap=trap)
    try:
        subscripted = Reduced(operator.getitem, trap, typing.Any)
        called = Reduced(Reduced(operator.getitem, trap, str), f"touch {marker}")
        path, model = save_with_hparams(tmp_path, "trap.ckpt", optim_cfg={"t": subscripted, "c": called})
    finally:
        remove_fake_modules()
    assert not marker.exists()
    loaded = load_checkpoint(path)
    assert not marker.exists()
    assert_not_imported()
    raw = read_raw(path)["hyper_parameters"]["optim_cfg"]
    from porter_deepspeech.checkpoint import InertObject
    assert issubclass(raw["t"], InertObject) and raw["t"]._qualname == "Trap[typing.Any]"
    assert isinstance(raw["c"], InertObject) and raw["c"]._args == (f"touch {marker}",)
    assert torch.equal(outputs(build_model(loaded))[0], outputs(model)[0])


@pytest.mark.parametrize("factory,global_name", [(os.system, "system"), (exec, "builtins.exec"),
                                                 (eval, "builtins.eval"), (getattr, "builtins.getattr")])
def test_defaultdict_with_dangerous_factory_refused(tmp_path, factory, global_name):
    import collections

    marker = tmp_path / "pwned"
    payload = collections.defaultdict(factory, {"cmd": f"touch {marker}"})
    path, _ = save_with_hparams(tmp_path, "factory.ckpt", optim_cfg=payload)
    with pytest.raises(InputError) as err:
        load_checkpoint(path)
    assert "factory.ckpt" in str(err.value) and global_name in str(err.value) and "refused" in str(err.value)
    assert not marker.exists()


def test_defaultdict_factory_from_config_namespace_is_never_called(tmp_path):
    """A factory that passes vetting as a placeholder is dropped: the dict is plain and no lookup calls it."""
    import collections

    marker = tmp_path / "pwned"

    def run(*args):
        marker.write_text("factory ran")
        return 0

    run.__qualname__ = "run"
    add_module("deepspeech_pytorch")
    add_module("deepspeech_pytorch.utils", run=run)
    try:
        path, _ = save_with_hparams(tmp_path, "factory_inert.ckpt",
                                    optim_cfg=collections.defaultdict(run, {"a": 1}))
    finally:
        remove_fake_modules()
    load_checkpoint(path)
    raw = read_raw(path)["hyper_parameters"]["optim_cfg"]
    assert type(raw) is dict and raw == {"a": 1}
    with pytest.raises(KeyError):
        raw["b"]
    assert not marker.exists()
    assert_not_imported()


def test_reduce_through_admitted_globals_cannot_smuggle_a_call(tmp_path):
    """Calls spelled through defaultdict's and getitem's argument lists still meet the global check."""
    import collections
    import operator

    marker = tmp_path / "pwned"
    payloads = {
        "defaultdict_items": Reduced(collections.defaultdict, None, {"x": SystemPayload(marker)}),
        "getitem_key": Reduced(operator.getitem, typing.List, SystemPayload(marker)),
        "getitem_subject": Reduced(operator.getitem, SystemPayload(marker), 0),
    }
    for name, payload in payloads.items():
        path, _ = save_with_hparams(tmp_path, f"{name}.ckpt", optim_cfg=payload)
        with pytest.raises(InputError, match=rf"{name}\.ckpt.*global posix\.system.*refused"):
            load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("func,global_name", [
    ("attrgetter", "operator.attrgetter"), ("methodcaller", "operator.methodcaller"),
    ("itemgetter", "operator.itemgetter"),
])
def test_other_operator_functions_stay_refused(tmp_path, func, global_name):
    import operator

    path, _ = save_with_hparams(tmp_path, "operator.ckpt", optim_cfg=getattr(operator, func)("system"))
    with pytest.raises(InputError, match=rf"operator\.ckpt: the checkpoint's pickle names the global "
                                         rf"{global_name}, which could run code; refused"):
        load_checkpoint(path)
