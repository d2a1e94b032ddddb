"""The V3.0 DeepSpeech module: state-dict names and shapes, output lengths, masking, padding invariance."""
import pytest
import torch
from torch import nn

from porter_deepspeech.labels import V3_LABELS
from porter_deepspeech.model import DeepSpeech, ModelConfig, SpectConfig, time_padding_mask

torch.set_num_threads(1)


def small_model(**kw) -> DeepSpeech:
    torch.manual_seed(0)
    cfg = ModelConfig(**{"hidden_size": 32, "hidden_layers": 2, **kw})
    model = DeepSpeech(list(V3_LABELS), cfg, SpectConfig())
    # non-trivial BatchNorm statistics, so eval mode differs from a plain affine identity
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_full_size_state_dict_matches_v3_release():
    model = DeepSpeech(list(V3_LABELS), ModelConfig(), SpectConfig())
    sd = model.state_dict()
    assert len(sd) == 80
    assert sum(v.numel() for k, v in sd.items() if v.is_floating_point() and "running" not in k) + sum(
        v.numel() for k, v in sd.items() if "running" in k) == 86_628_768
    expected = {
        "conv.seq_module.0.weight": (32, 1, 41, 11), "conv.seq_module.3.weight": (32, 32, 21, 11),
        "conv.seq_module.4.running_var": (32,), "rnns.0.rnn.weight_ih_l0": (4096, 1312),
        "rnns.0.rnn.weight_hh_l0_reverse": (4096, 1024), "rnns.4.batch_norm.module.weight": (1024,),
        "rnns.4.rnn.bias_hh_l0_reverse": (4096,), "fc.0.module.0.running_mean": (1024,),
        "fc.0.module.1.weight": (29, 1024),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert not any(k.startswith("rnns.0.batch_norm") for k in sd)
    assert not any(k.startswith("lookahead") for k in sd)
    assert "fc.0.module.1.bias" not in sd


def test_unidirectional_has_lookahead_and_no_reverse():
    model = small_model(bidirectional=False, lookahead_context=5)
    sd = model.state_dict()
    assert tuple(sd["lookahead.0.conv.weight"].shape) == (32, 1, 5)
    assert not any(k.endswith("_reverse") for k in sd)
    probs, lengths = model(torch.randn(1, 1, 161, 50), torch.tensor([50]))
    assert probs.shape == (1, 25, 29)


def test_gru_and_rnn_types():
    for rnn_type, rows in (("gru", 3 * 32), ("rnn", 32)):
        sd = small_model(rnn_type=rnn_type).state_dict()
        assert tuple(sd["rnns.1.rnn.weight_hh_l0"].shape) == (rows, 32)


def test_output_lengths_and_shapes():
    model = small_model()
    assert model.get_seq_lens(torch.tensor([621, 620, 1, 2, 401])).tolist() == [311, 310, 1, 1, 201]
    probs, lengths = model(torch.randn(2, 1, 161, 621), torch.tensor([621, 401]))
    assert probs.shape == (2, 311, 29)
    assert lengths.dtype == torch.int32 and lengths.tolist() == [311, 201]
    assert torch.allclose(probs.sum(-1), torch.ones(2, 311), atol=1e-5)


def test_training_mode_returns_logits():
    model = small_model().train()
    out, _ = model(torch.randn(2, 1, 161, 40), torch.tensor([40, 30]))
    assert not torch.allclose(out.sum(-1), torch.ones_like(out.sum(-1)), atol=1e-3)


def reference_mask_loop(seq_module, x, lengths):
    """The reference's MaskConv: per-item Python loop over .item() lengths, after every module."""
    for module in seq_module:
        x = module(x)
        mask = torch.zeros_like(x, dtype=torch.bool)
        for i, length in enumerate(lengths):
            length = int(length.item())
            if mask[i].size(2) - length > 0:
                mask[i].narrow(2, length, mask[i].size(2) - length).fill_(True)
        x = x.masked_fill(mask, 0)
    return x


def test_tensor_mask_equals_reference_loop():
    model = small_model()
    x = torch.randn(3, 1, 161, 90)
    out_lengths = model.get_seq_lens(torch.tensor([90, 61, 17]))
    ours, _ = model.conv(x, out_lengths)
    theirs = reference_mask_loop(model.conv.seq_module, x.clone(), out_lengths)
    assert torch.equal(ours, theirs)
    assert ours[1, :, :, 31:].abs().sum() == 0 and ours[1, :, :, 30].abs().sum() > 0


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_mask_is_built_from_lengths_not_frozen():
    assert time_padding_mask(torch.tensor([2, 4]), 4).tolist() == [[False, False, True, True]] + [[False] * 4]
    traced = torch.jit.trace(lambda lengths: time_padding_mask(lengths, 5), (torch.tensor([3]),))
    assert traced(torch.tensor([1])).tolist() == [[False, True, True, True, True]]


def test_padded_batch_equals_each_utterance_alone():
    model = small_model()
    x = torch.randn(2, 1, 161, 120)
    x[1, :, :, 75:] = 0  # a collated batch pads with zeros
    with torch.no_grad():
        batch_probs, batch_lengths = model(x, torch.tensor([120, 75]))
        alone, alone_lengths = model(x[1:, :, :, :75], torch.tensor([75]))
    n = int(alone_lengths[0])
    assert int(batch_lengths[1]) == n == 38
    assert torch.allclose(batch_probs[1, :n], alone[0], atol=1e-5)


@pytest.mark.parametrize("rnn_type,bidirectional", [(nn.LSTM, True), (nn.GRU, True), (nn.LSTM, False)])
def test_training_rnn_path_equals_the_packed_rnn(rnn_type, bidirectional):
    # Training runs the RNN on the padded batch (faster backward); it must compute what the packed RNN does.
    from porter_deepspeech.model import BatchRNN

    torch.manual_seed(3)
    layer = BatchRNN(12, 16, rnn_type=rnn_type, bidirectional=bidirectional, batch_norm=False)
    lengths = torch.tensor([9, 4, 7], dtype=torch.int32)
    x = torch.randn(9, 3, 12)
    target = torch.randn(9, 3, 16)

    def loss_and_grads(training):
        layer.train(training)
        layer.zero_grad()
        out = layer(x, lengths)
        loss = (out * target).sum()
        loss.backward()
        return out.detach(), [p.grad.clone() for p in layer.parameters()]

    packed_out, packed_grads = loss_and_grads(False)
    padded_out, padded_grads = loss_and_grads(True)
    assert packed_out.shape == padded_out.shape == (9, 3, 16)
    assert torch.allclose(padded_out, packed_out, atol=1e-6)
    assert padded_out[4:, 1].abs().max() == 0  # nothing after a sequence's end
    for packed, padded in zip(packed_grads, padded_grads):
        assert torch.allclose(padded, packed, atol=1e-5)
    assert set(layer.state_dict()) == {f"rnn.{k}" for k in rnn_type(12, 16, bidirectional=bidirectional).state_dict()}


def test_training_masks_after_every_module_so_batchnorm_statistics_match_v3():
    """BatchNorm's batch statistics count the padded steps, as zeros in V3: training keeps every mask."""
    ours, theirs = small_model().train(), small_model().train()
    x = torch.randn(3, 1, 161, 90)
    out_lengths = ours.get_seq_lens(torch.tensor([90, 61, 17]))
    got, _ = ours.conv(x, out_lengths)
    want = reference_mask_loop(theirs.conv.seq_module, x.clone(), out_lengths)
    assert torch.equal(got, want)
    for a, b in ((ours.conv.seq_module[i], theirs.conv.seq_module[i]) for i in (1, 4)):
        assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)
