"""``porter compare REPORT_A REPORT_B``: what differs between two saved runs."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("compare", help="show what differs between two report.json files")
    p.add_argument("report_a")
    p.add_argument("report_b")
    p.add_argument("--budget", action="append", default=[], metavar="EXPR",
                   help="a regression budget checked on REPORT_B, e.g. 'delta_wer<=0.5' (repeatable)")
    p.set_defaults(func=run)


def run(args) -> int:
    from porter.compare import compare_reports

    text, code = compare_reports(args.report_a, args.report_b, budgets=args.budget)
    print(text)
    return code
