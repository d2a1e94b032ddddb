"""AN4 readers: the three forms give the same utterances; bad input fails naming the file and what was expected."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pipeline_support import PROMPTS, write_an4_forms

from porter.errors import InputError
from porter_deepspeech.datasets import (
    RAW_S16BE_16K,
    WAV,
    DroppedCharacters,
    clean_an4_transcript,
    filter_transcript,
    read_an4_tree,
    read_manifest,
    read_raw_s16be,
)
from porter_deepspeech.features import load_audio
from porter_deepspeech.labels import V3_LABELS


@pytest.fixture(scope="module")
def forms(tmp_path_factory):
    return write_an4_forms(tmp_path_factory.mktemp("an4"))


def test_json_csv_and_tree_give_the_same_utterances(forms):
    from_json = read_manifest(forms.json_manifest)
    from_csv = read_manifest(forms.csv_manifest)
    from_tree = read_an4_tree(forms.tree, "test")

    assert [u.id for u in from_json] == list(PROMPTS)
    assert [u.transcript for u in from_json] == list(PROMPTS.values())
    assert from_csv == from_json
    assert [(u.id, u.transcript) for u in from_tree] == [(u.id, u.transcript) for u in from_json]
    assert {u.encoding for u in from_json} == {WAV} and {u.encoding for u in from_tree} == {RAW_S16BE_16K}
    # the big-endian raw, converted in Python, holds exactly the samples of the wav it was made from
    for wav_utt, raw_utt in zip(from_json, from_tree):
        from_wav = load_audio(wav_utt.audio)
        from_raw = read_raw_s16be(raw_utt.audio)
        assert from_raw.dtype == np.float32 and from_raw.shape == from_wav.shape and from_wav.size > 8000
        np.testing.assert_array_equal(from_raw, from_wav)


def test_tree_accepts_its_parent_folder(forms):
    assert read_an4_tree(forms.tree.parent, "test") == read_an4_tree(forms.tree, "test")


def test_raw_is_big_endian_scaled_by_32768(tmp_path):
    raw = tmp_path / "x.raw"
    raw.write_bytes(np.array([1, -2, 32767, -32768, 256], dtype=">i2").tobytes())
    np.testing.assert_array_equal(read_raw_s16be(raw),
                                  np.array([1, -2, 32767, -32768, 256], dtype=np.float32) / 32768)


@pytest.mark.parametrize("line, expected", [
    ("<s> RUBOUT G M E F THREE NINE </s> (an251-fash-b)", "RUBOUT G M E F THREE NINE"),
    ("<s> yes </s> (an86-fbbh-b)", "YES"),
    ("<s> TWO SIX EIGHT </s>", "TWO SIX EIGHT"),
    ("ENTER (an1-x-b)", "ENTER"),
])
def test_transcript_cleaning_matches_the_reference_converter(line, expected):
    assert clean_an4_transcript(line) == expected


def test_characters_outside_the_labels_are_dropped_and_counted():
    labels = list(V3_LABELS)
    items = [filter_transcript("IT'S A-OK, NO_1", labels), filter_transcript("HELLO", labels)]
    assert items[0].text == "IT'S AOK NO"
    assert items[0].dropped == "-,_1"
    assert items[1].dropped == ""
    tally = DroppedCharacters.tally(items)
    assert tally.count == 4 and tally.utterances == 1
    assert tally.characters == {"-": 1, ",": 1, "_": 1, "1": 1}
    # lower case is not in V3's labels: a manifest transcript in lower case loses its letters, as in V3
    assert filter_transcript("go", labels).text == ""


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def _manifest(tmp_path, forms, samples, root=None):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"root_path": str(root or forms.wav_dir.parent.parent), "samples": samples}))
    return path


def test_missing_audio_is_named(tmp_path, forms):
    path = _manifest(tmp_path, forms, [{"wav_path": "an4/wav/nope.wav", "transcript_path": "an4/txt/an1-spk-b.txt"}])
    with pytest.raises(InputError, match=r"m\.json: samples\[0\]: audio file .*nope\.wav does not exist"):
        read_manifest(path)


def test_missing_transcript_is_named(tmp_path, forms):
    path = _manifest(tmp_path, forms, [{"wav_path": "an4/wav/an1-spk-b.wav", "transcript_path": "an4/txt/gone.txt"}])
    with pytest.raises(InputError, match=r"samples\[0\]: transcript file .*gone\.txt does not exist"):
        read_manifest(path)


def test_non_utf8_transcript_is_named(tmp_path, forms):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"CAF\xe9")
    csv = tmp_path / "m.csv"
    csv.write_text(f"{forms.wav_dir / 'an1-spk-b.wav'},{bad}\n")
    with pytest.raises(InputError, match=r"bad\.txt: transcript is not UTF-8 .*0xe9.*offset 3"):
        read_manifest(csv)


@pytest.mark.parametrize("content, message", [
    ("{not json", r"not valid JSON"),
    ('["a"]', r"top level is list; expected an object with root_path and samples"),
    ('{"samples": []}', r"root_path: root_path is None"),
    ('{"root_path": "/x", "samples": {}}', r"samples: samples is dict; expected a list"),
    ('{"root_path": "/x", "samples": [{"wav_path": "a.wav"}]}', r"samples\[0\]\.transcript_path: is None"),
    ('{"root_path": "/x", "samples": []}', r"lists no utterances"),
    ("a.wav,b.txt,extra\n", r"line 1: has 3 fields"),
    ("\n\n", r"lists no utterances"),
])
def test_malformed_manifests_are_refused(tmp_path, content, message):
    path = tmp_path / "manifest.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as error:
        read_manifest(path)
    assert str(path) in str(error.value)


def test_manifest_that_does_not_exist(tmp_path):
    with pytest.raises(InputError, match=r"manifest not found"):
        read_manifest(tmp_path / "absent.json")


def test_tree_with_mismatched_ids_is_refused(tmp_path, forms):
    import shutil
    tree = tmp_path / "an4"
    shutil.copytree(forms.tree, tree)
    transcription = tree / "etc" / "an4_test.transcription"
    lines = transcription.read_text().splitlines()
    transcription.write_text("\n".join(lines[1:] + lines[:1]) + "\n")
    with pytest.raises(InputError, match=r"an4_test\.transcription: line 1: names utterance 'an2-spk-b'"):
        read_an4_tree(tree, "test")
    transcription.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match=r"has 2 transcripts but an4_test\.fileids lists 3 ids"):
        read_an4_tree(tree, "test")


def test_tree_errors(tmp_path, forms):
    with pytest.raises(InputError, match=r"not an AN4 tree"):
        read_an4_tree(tmp_path, "test")
    with pytest.raises(InputError, match=r"an4_train\.fileids: missing"):
        read_an4_tree(forms.tree, "train")
    odd = tmp_path / "odd.raw"
    odd.write_bytes(b"\x00\x01\x02")
    with pytest.raises(InputError, match=r"odd\.raw: has 3 bytes, an odd count"):
        read_raw_s16be(odd)


# ---------------------------------------------------------------------------------------------------------
# The synthetic corpus through the preprocess hook: generated on first use, then reused
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_an4_synth_is_generated_once_then_reused(tmp_path):
    from pipeline_support import dataset_config, deepspeech_plugins, model_config, require_tools, tiny_checkpoint

    require_tools("espeak-ng", "flite", "festival", "sox")
    plugins, checkpoint = deepspeech_plugins(), tiny_checkpoint(tmp_path / "tiny.ckpt", hidden=16, layers=1)
    root = tmp_path / "corpus"
    dataset = dataset_config("an4_synth", root=root, splits=["test_unseen_voices"], limit=2)
    model = model_config(checkpoint, dynamic=True)
    first = tmp_path / "first"
    first.mkdir()
    inputs = plugins.hook.porter_preprocess(dataset=dataset, model=model, workdir=first)
    assert inputs.sample_ids == ("test_unseen_voices_00000", "test_unseen_voices_00001")
    assert inputs.groups == ("test_unseen_voices",) * 2
    manifest = root / "test_unseen_voices_manifest.json"
    utterances = read_manifest(manifest)
    assert len(utterances) == 130  # the whole split is made; limit only selects
    assert inputs.references == tuple(u.transcript for u in utterances[:2]) and all(inputs.references)
    stamps = {u.id: u.audio.stat().st_mtime_ns for u in utterances}

    second = tmp_path / "second"
    second.mkdir()
    again = plugins.hook.porter_preprocess(dataset=dataset, model=model, workdir=second)
    assert again.references == inputs.references
    assert {u.id: u.audio.stat().st_mtime_ns for u in read_manifest(manifest)} == stamps
    np.testing.assert_array_equal(again.load(1)["spect"], inputs.load(1)["spect"])

    other_seed = dataset_config("an4_synth", root=root, splits=["test_unseen_voices"], seed=7)
    with pytest.raises(InputError, match=r"corpus: holds a corpus generated with seed 1234, but the recipe asks "
                                         r"for seed 7"):
        plugins.hook.porter_preprocess(dataset=other_seed, model=model, workdir=second)
