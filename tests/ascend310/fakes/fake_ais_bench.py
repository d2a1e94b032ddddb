#!/usr/bin/env python3
"""fake_ais_bench: a TEST DOUBLE of `python3 -m ais_bench`. It runs the fake ".om" with ONNX Runtime.

Each behaviour follows ais_bench's sources (Ascend/msit c69bedff, ait/components/benchmark/ais_bench/infer):
- __main__.py / args_check.py / path_security_check.py: --model must be an existing .om; --model, --input and
  --output paths may hold only [_A-Za-z0-9/.-], may not be symbolic links, and what exists may not be group- or
  other-writable; a refused path is an argparse error (exit 2).
- outputs in <output>/<output_dirname>/<input basename>_<k>.npy|bin|txt, trimmed to the shape that ran;
  utils.py save_data_to_files: TXT with "%f" for floats, "%d" otherwise, one row per last-axis run.
- summary.py: <output>/<output_dirname>_summary.json with NPU_compute_time / H2D_latency / D2H_latency as
  {min, max, mean, median, "percentile(99%)", count}, npu_compute_time_list, throughput = 1000*batchsize/mean,
  filesinfo and pid; its log line "throughput 1000*batchsize.mean(..)/NPU_compute_time.mean(..): ..".
"""
import argparse
import json
import os
import re
import stat
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_common as fake  # noqa: E402


def write_txt(path: Path, array: np.ndarray) -> None:
    rows = array.reshape(-1, array.shape[-1]) if array.ndim else array.reshape(1, 1)
    fmt = "%f" if array.dtype.kind == "f" else "%d"
    with open(path, "w") as out:
        for row in rows:
            out.write("".join((fmt % v) + " " for v in row.tolist()) + "\n")


WHITE_LIST = re.compile(r"[^_A-Za-z0-9/.-]")


def legal(path: str, *, read: bool) -> bool:
    """path_security_check.FileStat.is_basically_legal as ais_bench calls it for om, input and output."""
    if WHITE_LIST.search(path) or len(path) > 4096 or any(len(p) > 255 for p in path.split("/")):
        return False
    if os.path.islink(path):
        return False
    if not os.path.exists(path):
        return not read
    return not stat.S_IMODE(os.stat(path).st_mode) & (stat.S_IWGRP | stat.S_IWOTH)


def checked(kind: str, read: bool, suffix: str = ""):
    def check(value: str) -> str:
        for path in value.split(",") if kind == "input" else [value]:
            if not legal(path, read=read) or (suffix and not path.endswith(suffix)):
                raise argparse.ArgumentTypeError(f"{kind} path:{path} is illegal. Please check.")
        return value
    return check


def main(argv):
    fake.record("ais_bench", argv)
    fake.maybe_fail("ais_bench")
    parser = argparse.ArgumentParser(prog="ais_bench")  # abbreviations allowed, as in the real tool
    parser.add_argument("--model", required=True, type=checked("om", read=True, suffix=".om"))
    parser.add_argument("--input", type=checked("input", read=True))
    parser.add_argument("--output", type=checked("output", read=False))
    parser.add_argument("--output_dirname", type=checked("output", read=False))
    parser.add_argument("--outfmt", choices=("NPY", "BIN", "TXT"), default="BIN")
    parser.add_argument("--batchsize", type=int, default=1)
    parser.add_argument("--device", type=int, default=0)
    parser.add_argument("--warmup_count", type=int, default=1)
    parser.add_argument("--loop", type=int, default=1)
    parser.add_argument("--dymBatch", type=int)
    parser.add_argument("--dymDims")
    parser.add_argument("--dymHW")
    args = parser.parse_args(argv)
    dirname = args.output_dirname or time.strftime("%Y_%m_%d-%H_%M_%S")
    out_dir = Path(args.output) / dirname
    out_dir.mkdir(parents=True, exist_ok=True)
    hw = [int(v) for v in args.dymHW.split(",")] if args.dymHW else None
    times, files_info = [], {}
    for index, (stem, paths, outputs, ms) in enumerate(fake.infer_files(
            args.model, args.input.split(","), args.dymBatch, fake.parse_dym_dims(args.dymDims), hw)):
        times.extend([ms] * max(args.loop, 1))
        outfiles = []
        for k, array in enumerate(outputs):
            target = out_dir / f"{stem.split('.')[0]}_{k}.{args.outfmt.lower()}"
            array = np.asarray(array)
            if args.outfmt == "NPY":
                np.save(target, array)
            elif args.outfmt == "BIN":
                array.tofile(target)
            else:
                write_txt(target, array)
            outfiles.append(str(target))
        files_info[str(index)] = {"infiles": [str(p) for p in paths], "outfiles": outfiles}
    mean = float(np.mean(times)) if times else 0.0
    summary = {
        "filesinfo": files_info,
        "NPU_compute_time": {"min": float(np.min(times)), "max": float(np.max(times)), "mean": mean,
                             "median": float(np.median(times)),
                             "percentile(99%)": float(np.percentile(times, 99)), "count": len(times)},
        "H2D_latency": {"min": 0.01, "max": 0.02, "mean": 0.015, "median": 0.015, "percentile(99%)": 0.02,
                        "count": len(times)},
        "D2H_latency": {"min": 0.01, "max": 0.02, "mean": 0.015, "median": 0.015, "percentile(99%)": 0.02,
                        "count": len(times)},
        "npu_compute_time_list": times,
        "throughput": 1000.0 * args.batchsize / mean if mean else 0.0,
        "pid": 0,
    }
    Path(args.output, f"{dirname}_summary.json").write_text(json.dumps(summary))
    print(f"[INFO] NPU_compute_time (ms): min = {summary['NPU_compute_time']['min']}, mean = {mean}")
    print(f"[INFO] throughput 1000*batchsize.mean({args.batchsize})/NPU_compute_time.mean({mean}): "
          f"{summary['throughput']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
