#!/usr/bin/env python3
"""reportlab: the same 1,000-row, ~20-page table report (title, repeated header row,
"Page i of n" footers), rendered N times; prints documents per second.

usage: bench_reportlab.py ROWS.csv [N=20] [OUT.pdf]
"""
import csv
import statistics
import sys
import time
from io import BytesIO

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.pdfgen import canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Table, TableStyle


class NumberedCanvas(canvas.Canvas):
    """Holds pages back so the footer can say 'Page i of n'."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._saved = []

    def showPage(self):
        self._saved.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        n = len(self._saved)
        for i, state in enumerate(self._saved):
            self.__dict__.update(state)
            self.setFont("Helvetica", 8)
            self.drawCentredString(A4[0] / 2, 24, f"Page {i + 1} of {n}")
            super().showPage()
        super().save()


def render(rows):
    buf = BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=42, rightMargin=42, topMargin=42, bottomMargin=46)
    styles = getSampleStyleSheet()
    data = [["Date", "Category", "Region", "Description", "Qty", "Unit price"]] + rows
    table = Table(data, repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8.5),
        ("FONT", (0, 1), (-1, -1), "Helvetica", 8.5),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#334d6e")),
        ("TEXTCOLOR", (0, 0), (-1, 0), colors.white),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#edf2f7")]),
        ("ALIGN", (4, 0), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    story = [Paragraph("Sales report", styles["Title"]), table]
    doc.build(story, canvasmaker=NumberedCanvas)
    return buf.getvalue()


def main():
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.reader(f))[1:]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    pdf = render(rows)
    if len(sys.argv) > 3:
        with open(sys.argv[3], "wb") as f:
            f.write(pdf)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        render(rows)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"reportlab: median {med * 1000:.1f} ms/doc = {1 / med:.1f} docs/s ({len(pdf)} bytes)")


if __name__ == "__main__":
    main()
