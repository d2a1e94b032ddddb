"""Run reports: the typed model, the one reader of saved reports, and the renderers.

- :mod:`porter.report.model`: ``RunReport``, ``VariantReport``, ``StageRecord``, ``Latency``, ``Verdict``
- :mod:`porter.report.reader`: ``read_report`` — report.json back into the model (compare, html, plugins)
- :mod:`porter.report.table`: the terminal table; :mod:`porter.report.markdown`: report.md;
  :mod:`porter.report.html` + ``templates/``: report.html (Jinja2, autoescaped); :mod:`porter.report.plots`
- :mod:`porter.report.pareto`, :mod:`porter.report.verdicts`: the Pareto front and the budgets
- :mod:`porter.report.host`: library versions, host CPU and its features
- :mod:`porter.report.outputs`: writing report.json/.md/.html
"""
from porter.report.host import host_info, library_versions
from porter.report.model import Latency, RunReport, StageRecord, VariantReport, Verdict
from porter.report.reader import read_report
from porter.report.table import render_table

__all__ = [
           "Latency",
           "RunReport",
           "StageRecord",
           "VariantReport",
           "Verdict",
           "host_info",
           "library_versions",
           "read_report",
           "render_table",
]
