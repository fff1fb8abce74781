"""Writes the advisory PDFs of this folder: `python tests/data/cme/make_pdfs.py`.

CME refuses scrapers, so no real advisory PDF could be recorded. These follow the layout
FEEDS.md describes: a heading block, then per product a section title ("COMEX 100 GOLD
FUTURES (GC)") and a margin table whose cells are separate text runs, text left-aligned
and amounts right-aligned under their column header; one advisory runs over two pages,
another wraps its headers over two lines. The files are minimal but valid PDFs (Helvetica,
uncompressed content streams, exact xref), so they stay readable as text.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE_WIDTH, PAGE_HEIGHT = 612, 792
LEFT = 36
HEADER = (
    "CC",
    "Rate Type",
    "Tier",
    "Change",
    "ISO",
    "Current Initial",
    "Current Maintenance",
    "New Initial",
    "New Maintenance",
)
# The same header wrapped over two lines, as narrow columns print it.
WRAPPED_HEADER = (
    ("CC", "Rate", "Tier", "Change", "ISO", "Current", "Current", "New", "New"),
    ("", "Type", "", "", "", "Initial", "Maintenance", "Initial", "Maintenance"),
)
# Left edge of each column; amounts (the last four) end at the next column's left edge.
COLUMNS = (36, 62, 112, 138, 182, 212, 292, 392, 452, 540)
AMOUNT_COLUMNS = 4
# Helvetica advance widths (1/1000 em) of the characters amounts are made of.
AMOUNT_WIDTHS = dict.fromkeys("0123456789$", 556) | {",": 278, ".": 278, "%": 889, " ": 278}

Run = tuple[float, float, float, str]  # x, y, font size, text


def text(y: float, line: str, size: float = 9) -> list[Run]:
    return [(LEFT, y, size, line)]


def row(y: float, cells: tuple[str, ...], size: float = 8) -> list[Run]:
    runs: list[Run] = []
    for index, cell in enumerate(cells):
        if not cell:
            continue
        if index >= len(cells) - AMOUNT_COLUMNS and all(char in AMOUNT_WIDTHS for char in cell):
            width = sum(AMOUNT_WIDTHS[char] for char in cell) * size / 1000
            runs.append((COLUMNS[index + 1] - 6 - width, y, size, cell))
        else:
            runs.append((COLUMNS[index], y, size, cell))
    return runs


def table(top: float, section: str, rows: list[tuple[str, ...]], *, wrapped: bool = False) -> list[Run]:
    runs = text(top, section, size=10)
    for number, cells in enumerate([*(WRAPPED_HEADER if wrapped else [HEADER]), *rows]):
        runs += row(top - 16 - 12 * number, cells)
    return runs


def heading(number: str, title: str, notice_date: str, effective_date: str) -> list[Run]:
    return [
        *text(750, "CME Clearing Advisory Notice", size=14),
        *text(728, "To: Clearing Member Firms; Chief Financial Officers; Back Office Managers; Margin Managers"),
        *text(716, "From: CME Clearing"),
        *text(704, f"#: {number}"),
        *text(692, f"Subject: {title}"),
        *text(680, f"Notice Date: {notice_date}"),
        *text(668, f"Effective Date: {effective_date}"),
        *text(640, "The performance bond requirements for the following products are changed as shown below."),
    ]


def pdf(pages: list[list[Run]]) -> bytes:
    """A PDF of `pages`, each a list of text runs drawn in Helvetica."""
    objects: list[bytes] = [
        b"",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    page_ids = []
    for runs in pages:
        content = "\n".join(
            f"BT /F1 {size} Tf 1 0 0 1 {x:.2f} {y} Tm ({escaped(line)}) Tj ET" for x, y, size, line in runs
        )
        stream = content.encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % (PAGE_WIDTH, PAGE_HEIGHT, len(objects))
        )
        page_ids.append(len(objects))
    kids = b" ".join(b"%d 0 R" % page_id for page_id in page_ids)
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(page_ids))
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def escaped(line: str) -> str:
    return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def dollars() -> bytes:
    """Chadv20-236: dollar rates; gold on page 1, silver (one blank CC, one unreadable row) and copper on page 2."""
    title = "Performance Bond Requirements: Agriculture, Energy, Equity, Metals & Interest Rate Margins"
    gold = [
        ("GC", "Outright", "1", "Increase", "USD", "$9,900", "$9,000", "$10,450", "$9,500"),
        ("GC", "Outright", "2", "Increase", "USD", "$9,350", "$8,500", "$9,900", "$9,000"),
        ("GC", "Outright", "3", "Decrease", "USD", "9,020", "8,200", "8,800", "8,000"),
    ]
    silver = [
        ("", "Outright", "1", "Increase", "USD", "$7,700", "$7,000", "$8,250", "$7,500"),
        ("SI", "Outright", "2", "Increase", "USD", "$7,150", "$6,500", "TBD", "TBD"),
    ]
    copper = [("HG", "Outright", "1", "Increase", "USD", "$3,850", "$3,500", "$4,125", "$3,750")]
    return pdf(
        [
            [
                *heading("20-236", f"{title} - Effective June 12, 2020", "11 June 2020", "12 June 2020"),
                *table(600, "COMEX 100 GOLD FUTURES (GC)", gold),
                *text(40, "Page 1 of 2", size=7),
            ],
            [
                *table(740, "COMEX 5000 SILVER FUTURES (SI)", silver),
                *table(640, "COMEX COPPER FUTURES (HG)", copper),
                *text(40, "Page 2 of 2", size=7),
            ],
        ]
    )


def percent() -> bytes:
    """Chadv26-080: gold in percent of notional, silver from dollars to percent, a percent above 100; wrapped headers."""
    gold = [
        ("GC", "Outright", "1", "Increase", "USD", "8.80%", "8.00%", "9.90%", "9.00%"),
        ("GC", "Outright", "2", "Decrease", "USD", "9.35%", "8.50%", "9.24 %", "8.40 %"),
    ]
    silver = [
        ("SI", "Outright", "1", "Increase", "USD", "$27,500", "$25,000", "13.20%", "12.00%"),
        ("SI", "Outright", "2", "Increase", "USD", "11.00%", "10.00%", "132.00%", "120.00%"),
    ]
    title = "Performance Bond Requirements: Metals Margins - Effective March 13, 2026"
    return pdf(
        [
            [
                *heading("26-080", title, "Wednesday, March 11, 2026 5:30 PM CT", "Friday, March 13, 2026"),
                *table(600, "COMEX 100 GOLD FUTURES (GC)", gold, wrapped=True),
                *table(520, "COMEX 5000 SILVER FUTURES (SI)", silver, wrapped=True),
            ]
        ]
    )


def without_table() -> bytes:
    """An advisory PDF whose rates are in an attached spreadsheet, not in a table."""
    title = "Performance Bond Requirements: Metals Margins - Effective March 13, 2026"
    return pdf(
        [
            [
                *heading("26-080", title, "Wednesday, March 11, 2026 5:30 PM CT", "Friday, March 13, 2026"),
                *text(620, "The new rates are listed in the attached spreadsheet."),
            ]
        ]
    )


if __name__ == "__main__":
    (HERE / "Chadv20-236.pdf").write_bytes(dollars())
    (HERE / "Chadv26-080.pdf").write_bytes(percent())
    (HERE / "Chadv26-080_no_table.pdf").write_bytes(without_table())
