"""``porter compare REPORT_A REPORT_B``: what differs between two saved runs."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("compare", help="show what differs between two report.json files")
    p.add_argument("report_a")
    p.add_argument("report_b")
    p.set_defaults(func=run)


def run(args) -> int:
    from porter.compare import compare_reports

    text, code = compare_reports(args.report_a, args.report_b)
    print(text)
    return code
