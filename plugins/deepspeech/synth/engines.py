"""Running espeak-ng, flite and festival so that each says exactly the prompt's transcript.

Letters must come out as letter names: espeak-ng gets SSML say-as characters (a lone mid-sentence "A" is
otherwise a schwa), flite and festival get hyphen-joined letters (festival reads a final spaced "A" as the
article). Every tool is run with an argument list, never through a shell.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

from .prompts import Token


def espeak_ssml(tokens: tuple[Token, ...]) -> str:
    parts = []
    for token in tokens:
        if token.spelled:
            parts.append(f'<say-as interpret-as="characters">{token.text.lower()}</say-as>')
        else:
            parts.append(token.text.lower())
    return "<speak>" + " ".join(parts) + "</speak>"


def hyphenated_text(tokens: tuple[Token, ...]) -> str:
    return " ".join("-".join(token.text) if token.spelled else token.text.lower() for token in tokens)


def run_tool(args: list[str], *, timeout: float = 600) -> None:
    result = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.decode(errors='replace')[-400:]}")


def espeak_render(tokens, voice: str, out_wav: Path, *, words_per_minute: int, pitch: int) -> None:
    run_tool(["espeak-ng", "-m", "-v", voice, "-s", str(words_per_minute), "-p", str(pitch), "-w", str(out_wav),
              espeak_ssml(tokens)])


# Both engines take an F0 spread with the target mean; a tenth to a fifth of the mean is a speaking voice's.
F0_STDDEV_FRACTION = 0.15


def flite_render(tokens, voice: str, out_wav: Path, *, duration_stretch: float,
                 f0_mean_hz: float | None = None) -> None:
    f0 = [] if f0_mean_hz is None else ["--setf", f"int_f0_target_mean={f0_mean_hz:.1f}",
                                        "--setf", f"int_f0_target_stddev={F0_STDDEV_FRACTION * f0_mean_hz:.1f}"]
    run_tool(["flite", "-voice", voice, "--setf", f"duration_stretch={duration_stretch:.3f}", *f0,
              "-t", hyphenated_text(tokens), "-o", str(out_wav)])


def festival_render_batch(jobs: list[tuple[tuple[Token, ...], float, float | None, Path]], voice: str,
                          script_path: Path) -> None:
    """Many utterances in one festival process: its start-up (~0.3 s) would otherwise dominate.

    Each job is (tokens, duration stretch, F0 target in Hz or None for the voice's own, output wav)."""
    # The text goes into the script literally: festival's (Utterance Text var) would speak the variable's name.
    lines = [f"(voice_{voice})", "(set! porter_voice_lr_params int_lr_params)"]
    for tokens, duration_stretch, f0_mean_hz, out_wav in jobs:
        text = hyphenated_text(tokens)
        if '"' in text or "\\" in text or '"' in str(out_wav) or "\\" in str(out_wav):
            raise ValueError(f"cannot quote {text!r} / {out_wav} for festival")
        if f0_mean_hz is None:
            lines.append("(set! int_lr_params porter_voice_lr_params)")
        else:
            # The diphone voices' linear-regression F0 model maps its own mean (170 Hz) onto the target.
            lines.append(f"(set! int_lr_params '((target_f0_mean {f0_mean_hz:.1f}) "
                         f"(target_f0_std {F0_STDDEV_FRACTION * f0_mean_hz:.1f}) "
                         "(model_f0_mean 170) (model_f0_std 34)))")
        lines += [
            f"(Parameter.set 'Duration_Stretch {duration_stretch:.3f})",
            f'(set! utt1 (Utterance Text "{text}"))',
            "(utt.synth utt1)",
            f'(utt.save.wave utt1 "{out_wav}" \'riff)',
        ]
    script_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_tool(["festival", "-b", str(script_path)], timeout=600)


def sox_to_16k(in_wav: Path, out_wav: Path, *, pitch_cents: float) -> None:
    # 32-bit float out: no dither (sox dithers 16-bit output randomly), quantised once later, reproducibly.
    args = ["sox", "-V1", "-R", str(in_wav), "-r", "16000", "-c", "1", "-b", "32", "-e", "floating-point",
            str(out_wav)]
    if abs(pitch_cents) >= 1:
        args += ["pitch", f"{pitch_cents:.0f}"]
    args += ["rate", "16000"]
    run_tool(args)
