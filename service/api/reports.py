"""The audit report as one self-contained HTML file: inline CSS, charts as inline SVG, no links out."""

from __future__ import annotations

from markupsafe import Markup

from service.api import charts
from service.api.dashboard import templates
from service.domain.audit import AuditReport

__all__ = ["render_audit_html"]


def render_audit_html(report: AuditReport) -> str:
    alpha_chart = charts.bar_chart([a.scope for a in report.alpha], [a.alpha for a in report.alpha],
                                   intervals=[(a.ci_low, a.ci_high) for a in report.alpha],
                                   title="Krippendorff's alpha with 95% bootstrap CI", y_label="alpha", y_max=1.0)
    rater_chart = charts.bar_chart([r.rater for r in report.raters], [r.agreement for r in report.raters],
                                   intervals=[(r.ci_low, r.ci_high) for r in report.raters],
                                   title="Agreement with consensus per rater (95% Wilson CI)", y_label="agreement",
                                   y_min=0.0, y_max=1.0)
    hist = report.histogram
    confidence = charts.histogram(list(hist["low"]) + [1.0], list(hist["items"]),
                                  title=f"Consensus confidence ({report.method})")
    template = templates.get_template("audit.html")
    return template.render(report=report, alpha_chart=Markup(alpha_chart), rater_chart=Markup(rater_chart),
                           confidence=Markup(confidence))
