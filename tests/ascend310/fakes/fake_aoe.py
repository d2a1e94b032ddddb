#!/usr/bin/env python3
"""fake_aoe: a TEST DOUBLE of Huawei's aoe tuner; it only checks and records its arguments."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _fake_common as fake  # noqa: E402


def main(argv):
    fake.record("aoe", argv)
    fake.maybe_fail("aoe")
    options = dict(arg[2:].partition("=")[::2] for arg in argv if arg.startswith("--"))
    if options.get("job_type") not in ("1", "2") or not Path(options.get("model", "")).is_file():
        print(f"aoe fake: bad arguments {argv}", file=sys.stderr)
        return 1
    print("AOE tuning finished (fake)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
