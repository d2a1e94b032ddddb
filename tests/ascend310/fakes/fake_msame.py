#!/usr/bin/env python3
"""fake_msame: a TEST DOUBLE of msame. It runs the fake ".om" (an ONNX model) with ONNX Runtime.

Layout as msame: one inference per identically named file across the --input folders, outputs in a new
timestamp-named folder under --output as <input basename>_output_<k>.bin|.txt, per-file times printed.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_common as fake  # noqa: E402


def write_txt(path: Path, array: np.ndarray) -> None:
    rows = array.reshape(-1, array.shape[-1]) if array.ndim else array.reshape(1, 1)
    with open(path, "w") as out:
        for row in rows:
            out.write("".join(f"{v:g} " for v in row.tolist()) + "\n")


def main(argv):
    fake.record("msame", argv)
    fake.maybe_fail("msame")
    parser = argparse.ArgumentParser(prog="msame", allow_abbrev=False)
    parser.add_argument("--model", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--outfmt", choices=("TXT", "BIN"), default="TXT")
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--loop", type=int, default=1)
    parser.add_argument("--dymBatch", type=int)
    parser.add_argument("--dymDims")
    parser.add_argument("--dymHW")
    args = parser.parse_args(argv)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    out_dir = Path(args.output) / stamp
    suffix = 0
    while out_dir.exists():
        suffix += 1
        out_dir = Path(args.output) / f"{stamp}_{suffix}"
    out_dir.mkdir(parents=True)
    hw = [int(v) for v in args.dymHW.split(",")] if args.dymHW else None
    times = []
    for stem, paths, outputs, ms in fake.infer_files(args.model, args.input.split(","), args.dymBatch,
                                                     fake.parse_dym_dims(args.dymDims), hw):
        print(f"[INFO] start to process file:{paths[0]}")
        print("[INFO] model execute success")
        print(f"Inference time: {ms:.3f}ms")
        for k, array in enumerate(outputs):
            target = out_dir / f"{stem}_output_{k}.{args.outfmt.lower()}"
            if args.outfmt == "BIN":
                np.asarray(array).tofile(target)
            else:
                write_txt(target, np.asarray(array))
        print("[INFO] output data success")
        times.append(ms)
    if times:
        print(f"Inference average time : {sum(times) / len(times):.2f} ms")
        rest = times[1:] or times
        print(f"Inference average time without first time: {sum(rest) / len(rest):.2f} ms")
    print("[INFO] unload model success, model Id is 1")
    print("[INFO] Execute sample success")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
