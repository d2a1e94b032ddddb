#!/usr/bin/env python3
"""fake_aoe: a TEST DOUBLE of Huawei's aoe tuner; it checks and records its arguments, tuning nothing.

As aoe's parameter pages (aoepar_16_0xx) say: --job_type 1 (subgraph) or 2 (operator), an existing model, and
-1 dims in --input_shape only with one dynamic_* option, which aoe takes as atc does.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_common as fake  # noqa: E402


def main(argv):
    fake.record("aoe", argv)
    fake.maybe_fail("aoe")
    options = fake.parse_options(argv)
    if isinstance(options, str):
        print(options, file=sys.stderr)
        return 1
    if options.get("job_type") not in ("1", "2") or not Path(options.get("model", "")).is_file():
        print(f"aoe fake: bad arguments {argv}", file=sys.stderr)
        return 1
    problem = fake.dynamic_problem(options)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    print("AOE tuning finished (fake)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
