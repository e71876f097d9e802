"""A statement as a PDF, made the way the health summary is (fpdf2, `PortalPdf`): what the visit cost, what
insurance paid and took off, and what is left to pay. CPU work: callers run it in a worker thread."""

from __future__ import annotations

from fpdf import FontFace
from fpdf.enums import XPos, YPos

from mappers.billing import Statement, dollars

from .summary_pdf import MUTED, PortalPdf, heading


def _money_rows(s: Statement) -> list[tuple[str, str]]:
    t = s.totals
    rows = [("Total charges", dollars(t.charges))]
    if t.adjustment:
        rows.append(("Insurance discount (agreed price)", "-" + dollars(t.adjustment)))
    if t.insurance_paid:
        rows.append((f"Paid by {t.payer or 'your insurance'}", "-" + dollars(t.insurance_paid)))
    if t.discount:
        rows.append(("Discount for paying yourself", "-" + dollars(t.discount)))
    rows.append(("Your share", dollars(t.you_owe)))
    return rows


def statement_pdf(s: Statement, patient_name: str, phone: str, product: str = "Patient portal") -> bytes:
    pdf = PortalPdf(f"Statement {s.number} for {patient_name}")
    pdf.set_title(f"Statement {s.number}")
    pdf.set_creator(product)
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 18)
    pdf.cell(0, 10, pdf.text_of(f"Statement {s.number}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "", 11)
    pdf.multi_cell(0, 6, pdf.text_of(f"{patient_name} - dated {s.date_text}"
                                     + (f" - visit with {s.clinician}" if s.clinician else "")),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(pdf.family, "B", 13)
    owed = (f"You owe {s.balance_text}" + (f", due by {s.due_text}" if s.due_text else "")) if s.open \
        else f"{s.status_text}: nothing left to pay"
    pdf.multi_cell(0, 8, pdf.text_of(owed), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    heading(pdf, "What was done")
    pdf.set_font(pdf.family, "", 9.5)
    with pdf.table(col_widths=(46, 18, 18, 18, 18), line_height=4.8, text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT",
                                                                                  "RIGHT"),
                   first_row_as_headings=True, headings_style=FontFace(emphasis="BOLD", fill_color=(244, 247, 249)),
                   borders_layout="HORIZONTAL_LINES") as table:
        head = table.row()
        for text in ("Service", "Price", "Insurance took off", "Insurance paid", "Your share"):
            head.cell(pdf.text_of(text))
        for line in s.lines:
            p = line.parts
            row = table.row()
            row.cell(pdf.text_of(line.what + (f" (billing code {line.code})" if line.code else "")))
            for amount in (p.charges, p.adjustment + p.discount, p.insurance_paid, p.you_owe):
                row.cell(pdf.text_of(dollars(amount)))

    heading(pdf, "Summary")
    pdf.set_font(pdf.family, "", 10.5)
    for label, value in _money_rows(s):
        pdf.cell(120, 6, pdf.text_of(label))
        pdf.cell(0, 6, pdf.text_of(value), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for note in s.notes:
        pdf.multi_cell(0, 5, pdf.text_of(note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)
    pdf.set_text_color(*MUTED)
    pdf.multi_cell(0, 5, pdf.text_of(f"Questions about this bill? Send a message in the patient portal or call the "
                                     f"billing office at {phone}. Pay in the patient portal."),
                   new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
