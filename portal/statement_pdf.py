"""A statement as a PDF, made the way the health summary is (fpdf2, `PortalPdf`): what the visit cost, what
insurance paid and took off, and what is left to pay. CPU work: callers run it in a worker thread.

Its words are in the statement's own language (`Statement.locale`, the reader's when the page made it)."""

from __future__ import annotations

from fpdf import FontFace
from fpdf.enums import XPos, YPos

from locales import gettext_in
from mappers.billing import Statement

from .summary_pdf import MUTED, PortalPdf, heading


def _money_rows(s: Statement) -> list[tuple[str, str]]:
    def _(message: str) -> str:
        return gettext_in(s.locale, message)

    t = s.totals
    rows = [(_("Total charges"), s.money(t.charges))]
    if t.adjustment:
        rows.append((_("Insurance discount (agreed price)"), s.money(-t.adjustment)))
    if t.insurance_paid:
        paid_by = _("Paid by %(payer)s") % {"payer": t.payer} if t.payer else _("Paid by your insurance")
        rows.append((paid_by, s.money(-t.insurance_paid)))
    if t.discount:
        rows.append((_("Discount for paying yourself"), s.money(-t.discount)))
    rows.append((_("Your share"), s.money(t.you_owe)))
    return rows


def statement_pdf(s: Statement, patient_name: str, phone: str, product: str = "Patient portal") -> bytes:
    def _(message: str) -> str:
        return gettext_in(s.locale, message)

    title = _("Statement %(number)s") % {"number": s.number}
    pdf = PortalPdf(_("Statement %(number)s for %(name)s") % {"number": s.number, "name": patient_name})
    pdf.set_title(title)
    pdf.set_creator(product)
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 18)
    pdf.cell(0, 10, pdf.text_of(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 11)
    about = (_("%(name)s - dated %(day)s - visit with %(clinician)s") if s.clinician
             else _("%(name)s - dated %(day)s")) % {"name": patient_name, "day": s.date_text, "clinician": s.clinician}
    pdf.multi_cell(0, 6, pdf.text_of(about), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "B", 13)
    if s.open:
        owed = (_("You owe %(amount)s, due by %(day)s") if s.due_text else _("You owe %(amount)s")) % {
            "amount": s.balance_text, "day": s.due_text}
    else:
        owed = _("%(status)s: nothing left to pay") % {"status": s.status_text}
    pdf.multi_cell(0, 8, pdf.text_of(owed), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    heading(pdf, _("What was done"))
    pdf.set_font(pdf.family, "", 9.5)
    with pdf.table(col_widths=(46, 18, 18, 18, 18), line_height=4.8, text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT",
                                                                                  "RIGHT"),
                   first_row_as_headings=True, headings_style=FontFace(emphasis="BOLD", fill_color=(244, 247, 249)),
                   borders_layout="HORIZONTAL_LINES") as table:
        head = table.row()
        for text in (_("Service"), _("Price"), _("Insurance took off"), _("Insurance paid"), _("Your share")):
            head.cell(pdf.text_of(text))
        for line in s.lines:
            p = line.parts
            row = table.row()
            what = _("%(service)s (billing code %(code)s)") % {"service": line.what, "code": line.code} \
                if line.code else line.what
            row.cell(pdf.text_of(what))
            for amount in (p.charges, p.adjustment + p.discount, p.insurance_paid, p.you_owe):
                row.cell(pdf.text_of(s.money(amount)))

    heading(pdf, _("Summary"))
    pdf.set_font(pdf.family, "", 10.5)
    for label, value in _money_rows(s):
        pdf.cell(120, 6, pdf.text_of(label))
        pdf.cell(0, 6, pdf.text_of(value), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for note in s.notes:
        pdf.multi_cell(0, 5, pdf.text_of(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(0, 5, pdf.text_of(_("Questions about this bill? Send a message in the patient portal or call the "
                                       "billing office at %(phone)s. Pay in the patient portal.") % {"phone": phone}),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
