"""The printable health summary as a PDF, made on the server with fpdf2 from `mappers.summary`.

Text is set in DejaVu Sans when the system has it (Debian's fonts-dejavu-core; `./stack` installs it), so
units such as °C and m² and any name print as written; without it the PDF falls back to a built-in font and
plain Latin-1 text. Building it is CPU work: callers run `summary_pdf` in a worker thread.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from locales import ENGLISH, gettext_in
from mappers.summary import HealthSummary

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
BRAND = (11, 79, 108)
MUTED = (74, 74, 74)
CHUNK = 64 * 1024
_PLAIN = str.maketrans({"\u2013": "-", "\u2014": "-", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'",
                        "\u2026": "...", "\u2191": "^", "\u2193": "v", "\u2713": "", "\u00b2": "2",
                        "\u2265": ">=", "\u2264": "<="})


class PortalPdf(FPDF):
    def __init__(self, footer_text: str, locale: str = ENGLISH) -> None:
        super().__init__(format="Letter")
        self.footer_text = footer_text
        self.locale = locale
        self.unicode = False
        for folder in FONT_DIRS:
            regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
            if regular.exists() and bold.exists():
                self.add_font("Body", "", str(regular))
                self.add_font("Body", "B", str(bold))
                self.unicode = True
                break
        self.family = "Body" if self.unicode else "Helvetica"
        self.set_auto_page_break(True, margin=18)
        self.set_margins(16, 16, 16)

    def words(self, message: str) -> str:
        """One of our messages in the summary's language."""
        return gettext_in(self.locale, message)

    def text_of(self, value: str) -> str:
        if self.unicode:
            return value
        plain = value.translate(_PLAIN)
        return unicodedata.normalize("NFKD", plain).encode("latin-1", "ignore").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(*MUTED)
        page = gettext_in(self.locale, "%(text)s - page %(page)s of %(pages)s") % {
            "text": self.footer_text, "page": self.page_no(), "pages": "{nb}"}
        self.cell(0, 5, self.text_of(page), align="C")


def heading(pdf: PortalPdf, text: str) -> None:
    if pdf.get_y() > pdf.h - 40:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font(pdf.family, "B", 13)
    pdf.set_text_color(*BRAND)
    pdf.cell(0, 8, pdf.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_draw_color(*BRAND)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    pdf.set_text_color(0, 0, 0)


def _item(pdf: PortalPdf, title: str, details: Sequence[str | None]) -> None:
    pdf.set_font(pdf.family, "B", 10.5)
    pdf.multi_cell(0, 5.2, pdf.text_of(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_font(pdf.family, "", 10)
    for line in details:
        if line:
            pdf.set_x(pdf.l_margin + 4)
            pdf.multi_cell(0, 5, pdf.text_of(line), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.ln(1.2)


def _none(pdf: PortalPdf, text: str) -> None:
    pdf.set_font(pdf.family, "", 10)
    pdf.multi_cell(0, 5, pdf.text_of(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _results_table(pdf: PortalPdf, summary: HealthSummary) -> None:
    _ = pdf.words
    pdf.set_font(pdf.family, "", 9)
    with pdf.table(col_widths=(34, 20, 24, 14, 26), line_height=4.6, text_align="LEFT", first_row_as_headings=True,
                   headings_style=FontFace(emphasis="BOLD", fill_color=(244, 247, 249)),
                   borders_layout="HORIZONTAL_LINES") as table:
        header = table.row()
        for text in (_("Test"), _("Latest result"), _("Normal range"), _("Meaning"), _("Date")):
            header.cell(pdf.text_of(text))
        for r in summary.latest_results:
            row = table.row()
            for text in (r.name, r.value_text, r.range_text or "-", r.flag.words if r.flag else "-", r.date_text):
                row.cell(pdf.text_of(text))


def summary_pdf(summary: HealthSummary, product: str = "Patient portal", locale: str = ENGLISH) -> bytes:
    """The summary as a PDF, its own words in `locale` (the summary's came in it from `mappers.summary`)."""
    def _(message: str) -> str:
        return gettext_in(locale, message)

    pdf = PortalPdf(_("Health summary for %(name)s, made %(day)s") % {"name": summary.name,
                                                                        "day": summary.made_text}, locale)
    pdf.set_title(_("Health summary"))
    pdf.set_creator(product)
    pdf.set_lang(locale.split("_")[0])
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 18)
    pdf.cell(0, 10, pdf.text_of(_("Health summary")), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 11)
    who = _("%(name)s, born %(day)s") % {"name": summary.name, "day": summary.born_text} if summary.born_text \
        else summary.name
    pdf.multi_cell(0, 6, pdf.text_of(who), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*MUTED)
    made = _("Made on %(day)s from the clinic's health record. It holds private health information: keep it safe.") \
        % {"day": summary.made_text}
    pdf.multi_cell(0, 5, pdf.text_of(made), new_x=XPos.LMARGIN, new_y=YPos.NEXT, align="L")
    pdf.set_text_color(0, 0, 0)

    heading(pdf, _("Health problems"))
    for p in summary.problems:
        _item(pdf, p.name, [_("%(status)s, since %(day)s") % {"status": p.status_text, "day": p.since_text}
                            if p.since_text else p.status_text])
    if not summary.problems:
        _none(pdf, _("No current health problems on record."))

    heading(pdf, _("Medicines"))
    for m in summary.medicines:
        _item(pdf, m.name, [m.dose_text, _("For: %(reason)s") % {"reason": m.reason} if m.reason else None,
                            _("Prescribed by %(who)s") % {"who": m.prescriber} if m.prescriber else None,
                            m.refills_text])
    if not summary.medicines:
        _none(pdf, _("No current medicines on record."))

    heading(pdf, _("Allergies"))
    if summary.has_no_known_allergies:
        _none(pdf, _("No known allergies."))
    for a in () if summary.has_no_known_allergies else summary.allergies:
        _item(pdf, a.substance, [a.criticality, *(
            _("Reaction: %(what)s (%(how)s)") % {"what": r.what, "how": r.severity.lower()} if r.severity
            else _("Reaction: %(what)s") % {"what": r.what} for r in a.reactions)])
    if not summary.allergies:
        _none(pdf, _("No allergies on record."))

    heading(pdf, _("Vaccinations"))
    for v in summary.vaccines:
        given = _("Given %(when)s") % {"when": v.date_text}
        _item(pdf, v.name, [given + (f" - {v.dose_text}" if v.dose_text else "")])
    if not summary.vaccines:
        _none(pdf, _("No vaccinations on record."))

    if summary.procedures:
        heading(pdf, _("Procedures"))
        for proc in summary.procedures:
            _item(pdf, proc.name, [f"{proc.status_text}, {proc.date_text}"])

    heading(pdf, _("Latest test results"))
    if summary.latest_results:
        _results_table(pdf, summary)
    else:
        _none(pdf, _("No test results on record."))

    heading(pdf, _("Recent visits"))
    for visit in summary.visits:
        _item(pdf, f"{visit.kind} - {visit.date_text}",
              [_("With %(who)s") % {"who": ", ".join(visit.clinicians)} if visit.clinicians else None,
               _("Reason: %(why)s") % {"why": ", ".join(visit.reasons)} if visit.reasons else None])
    if not summary.visits:
        _none(pdf, _("No visits on record."))
    return bytes(pdf.output())


def chunks(data: bytes, size: int = CHUNK) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]
