#!/usr/bin/env python3
"""fake_msame: a TEST DOUBLE of msame. It runs the fake ".om" (an ONNX model) with ONNX Runtime.

Each behaviour follows msame's sources (Ascend/tools msame/src, commit 9d6da90):
- main.cpp: getopt options; ``--outfmt TXT`` writes text, any other value binary.
- sample_process.cpp: the output folder ``<output>/<printCurrentTime()>`` (year, month, day unpadded, then
  _hour_min_sec_usec) is printed, then created; ``--input`` is taken as folders unless its first path contains
  ".bin"; the first folder's files are sorted as strings (data1, data10, data2) and paired by name across the
  folders; ``[INFO] start to process file:<dir>/<name>`` per folder, ``Inference time: <t>ms`` per file (C++
  stream formatting), ``Inference average time : %.2f ms`` and, for more than one file, ``Inference average
  time without first time: %.2f ms``; outputs ``<stem>_output_<k>.txt|.bin``.
- model_process.cpp: output buffers are sized by aclmdlGetOutputSizeByIndex, i.e. for the LARGEST profile, and
  written whole; only --dymBatch shrinks the written length (len / (maxBatch / dymBatch)); TXT writes values
  with ``ostream <<`` (six significant digits), so int8/uint8 outputs come out as characters.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_common as fake  # noqa: E402


def print_current_time() -> str:
    now = time.time()
    t = time.localtime(now)
    usec = int((now % 1) * 1_000_000)
    return f"{t.tm_year}{t.tm_mon}{t.tm_mday}_{t.tm_hour}_{t.tm_min}_{t.tm_sec}_{usec}"


def write_txt(path: Path, flat: np.ndarray) -> None:
    with open(path, "wb") as out:
        for value in flat.tolist():
            if flat.dtype in (np.int8, np.uint8):
                out.write(bytes([int(value) & 0xFF]) + b" ")  # `outstr << int8_t` streams a character
            else:
                out.write(f"{value:g} ".encode())


def main(argv):
    fake.record("msame", argv)
    fake.maybe_fail("msame")
    parser = argparse.ArgumentParser(prog="msame", allow_abbrev=False)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--outfmt", default="TXT")
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--loop", type=int, default=1)
    parser.add_argument("--dymBatch", type=int)
    parser.add_argument("--dymDims")
    parser.add_argument("--dymHW")
    args = parser.parse_args(argv)
    print("[INFO] acl init success")
    print(f"[INFO] open device {args.device} success")
    print("[INFO] create context success")
    print("[INFO] create stream success")
    print("[INFO] get run mode success")
    inputs = args.input.split(",")
    if ".bin" in inputs[0]:
        # the real tool now reads each path as one input file; porter never means that
        print(f"[ERROR] fake msame: --input {args.input} is read as files (its first path holds '.bin')")
        return 1
    for folder in inputs:
        if not Path(folder).is_dir():
            print("[ERROR] input parameter must be folder or file ending in '.bin'")
            return 0  # msame exits 0 here (exit(0) in sample_process.cpp)
    out_dir = Path(args.output) / print_current_time()
    print(out_dir)
    out_dir.mkdir(parents=True)
    model, session = fake.session_for(args.model)
    info = fake.profile_info(model)
    largest = fake.max_output_sizes(model, session, info)
    max_batch = max((p[0] for p in info.get("profiles") or []), default=0) \
        if info.get("option") == "dynamic_batch_size" else 0
    hw = [int(v) for v in args.dymHW.split(",")] if args.dymHW else None
    names = sorted(p.name for p in Path(inputs[0]).iterdir() if p.is_file())
    times = []
    for stem, paths, outputs, ms in fake.infer_files(args.model, inputs, args.dymBatch,
                                                     fake.parse_dym_dims(args.dymDims), hw, names=names):
        for path in paths:
            print(f"[INFO] start to process file:{path}")
        print(f"Inference time: {ms:g}ms")
        for k, array in enumerate(outputs):
            flat = np.asarray(array).ravel()
            length = largest[k] if largest else flat.size
            if args.dymBatch and max_batch:
                length = length // (max_batch // args.dymBatch)
            buffer = np.full(max(length, flat.size), fake.filler(flat.dtype), dtype=flat.dtype)
            buffer[:flat.size] = flat
            target = out_dir / f"{stem}_output_{k}.{'txt' if args.outfmt == 'TXT' else 'bin'}"
            if args.outfmt == "TXT":
                write_txt(target, buffer)
            else:
                buffer.tofile(target)
        times.append(ms)
    if times:
        print(f"Inference average time : {sum(times) / len(times):.2f} ms")
        if len(times) > 1:
            print(f"Inference average time without first time: {(sum(times) - times[0]) / (len(times) - 1):.2f} ms")
    print("[INFO] end to destroy stream")
    print("[INFO] end to destroy context")
    print(f"[INFO] end to reset device is {args.device}")
    print("[INFO] end to finalize acl")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
