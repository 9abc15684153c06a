#!/usr/bin/python3
"""xlsx_read.py: read acbill workbooks back for the tests (openpyxl).

Test-only.  Run with Debian's /usr/bin/python3 (python3-openpyxl).  Every
command prints plain text on stdout and exits 0, or prints a message on
stderr and exits 1 (2 for bad usage).  Values are normalised so that C
tests can compare them with text built by PostgreSQL:

  empty cell          ''
  number              shortest decimal: 5.15, 0.105, 120 (never 120.0)
  date-time cell      YYYY-MM-DD HH:MM:SS
  string              as is (tabs and newlines shown as \\t and \\n)

Commands:
  sheets FILE                 sheet names, one per line
  rows FILE SHEET...          the rows of the sheets, one line each, cells
                              separated by tabs, trailing empty cells cut
  cell FILE SHEET REF         data_type, number_format, value (tab-separated)
  find FILE SHEET LABEL [N]   the N (default 1) cells right of the first cell
                              whose value is LABEL, tab-separated
  label FILE SHEET LABEL      like cell, for the cell right of LABEL
  props FILE                  document properties as key<TAB>value lines
  view FILE SHEET             freeze panes and autofilter range
  part FILE MEMBER            the raw text of a zip member (e.g.
                              xl/worksheets/sheet1.xml), with python's zipfile
  parts FILE                  every member parsed as XML (xml.dom.minidom);
                              prints "ok NAME" a line, fails on the first
                              that is not well-formed
  overflow FILE SHEET         the number cells whose text, as their format
                              shows it, is wider than their column (Excel
                              would show ###): "REF TEXT WIDTH" a line;
                              nothing when every number fits
"""
import datetime
import decimal
import sys
import warnings

warnings.simplefilter("ignore")
import openpyxl  # noqa: E402


def norm(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, datetime.date):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e15:
            return str(int(v))
        d = decimal.Decimal(repr(v)).normalize()
        return format(d, "f")
    return str(v).replace("\t", "\\t").replace("\n", "\\n")


def book(path):
    # read_only=False: freeze panes, filters and number formats are wanted.
    return openpyxl.load_workbook(path, data_only=False)


def sheet(wb, name):
    if name not in wb.sheetnames:
        raise SystemExit("xlsx_read: no sheet %r (have %s)"
                         % (name, ", ".join(wb.sheetnames)))
    return wb[name]


def cmd_sheets(path):
    for name in book(path).sheetnames:
        print(name)


def cmd_rows(path, *names):
    wb = book(path)
    for name in names:
        for row in sheet(wb, name).iter_rows(values_only=True):
            cells = [norm(v) for v in row]
            while cells and cells[-1] == "":
                cells.pop()
            print("\t".join(cells))


def cmd_cell(path, name, ref):
    c = sheet(book(path), name)[ref]
    print("%s\t%s\t%s" % (c.data_type, c.number_format, norm(c.value)))


def cmd_find(path, name, label, n="1"):
    ws = sheet(book(path), name)
    for row in ws.iter_rows():
        for c in row:
            if c.value == label:
                vals = [norm(ws.cell(row=c.row, column=c.column + k).value)
                        for k in range(1, int(n) + 1)]
                print("\t".join(vals))
                return
    raise SystemExit("xlsx_read: %r not found on sheet %r" % (label, name))


def cmd_label(path, name, label):
    ws = sheet(book(path), name)
    for row in ws.iter_rows():
        for c in row:
            if c.value == label:
                v = ws.cell(row=c.row, column=c.column + 1)
                print("%s\t%s\t%s" % (v.data_type, v.number_format,
                                      norm(v.value)))
                return
    raise SystemExit("xlsx_read: %r not found on sheet %r" % (label, name))


def cmd_props(path):
    p = book(path).properties
    for key in ("title", "subject", "creator", "category", "keywords",
                "description"):
        print("%s\t%s" % (key, norm(getattr(p, key))))
    print("created\t%s" % norm(p.created))
    print("modified\t%s" % norm(p.modified))


def cmd_view(path, name):
    ws = sheet(book(path), name)
    print("freeze\t%s" % (ws.freeze_panes or ""))
    print("filter\t%s" % (ws.auto_filter.ref or ""))


def cmd_part(path, member):
    import zipfile
    with zipfile.ZipFile(path) as z:
        sys.stdout.write(z.read(member).decode("utf-8"))
        sys.stdout.write("\n")


def cmd_parts(path):
    import zipfile
    import xml.dom.minidom
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.endswith(".xml") or name.endswith(".rels"):
                xml.dom.minidom.parseString(z.read(name))
                print("ok %s" % name)


def shown(value, fmt):
    """The text of number value under number format fmt, as Excel shows
    it (thousands separators, decimals, literal prefix and suffix)."""
    import re
    section = fmt.split(";")[0]
    if section == "General":
        return norm(value)
    literal = "".join(re.findall(r'"([^"]*)"', section))
    symbol = "".join(re.findall(r"\[\$([^-\]]*)", section))
    core = re.sub(r'"[^"]*"|\[[^\]]*\]', "", section)
    m = re.search(r"[#0,]*0(\.0+)?", core)
    decimals = len(m.group(1)) - 1 if m and m.group(1) else 0
    comma = "," in core
    text = ("{:,.%df}" if comma else "{:.%df}") % decimals
    text = text.format(abs(value))
    before, after = (core[:m.start()], core[m.end():]) if m else (core, "")
    return (("-" if value < 0 else "") + symbol + before + text + after
            + literal)


def cmd_overflow(path, name):
    from openpyxl.utils import get_column_letter
    ws = sheet(book(path), name)
    for row in ws.iter_rows():
        for c in row:
            if not isinstance(c.value, (int, float)) or c.is_date:
                continue
            letter = get_column_letter(c.column)
            dim = ws.column_dimensions.get(letter)
            width = dim.width if dim is not None and dim.width else 8.43
            merged = any(c.coordinate in r for r in ws.merged_cells.ranges)
            text = shown(c.value, c.number_format or "General")
            if not merged and len(text) > width:
                print("%s %s %s" % (c.coordinate, text, width))


COMMANDS = {"overflow": (cmd_overflow, 2, 2), "part": (cmd_part, 2, 2), "parts": (cmd_parts, 1, 1),"sheets": (cmd_sheets, 1, 1), "rows": (cmd_rows, 2, 99),
            "cell": (cmd_cell, 3, 3), "find": (cmd_find, 3, 4),
            "label": (cmd_label, 3, 3),
            "props": (cmd_props, 1, 1), "view": (cmd_view, 2, 2)}


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        sys.stderr.write(__doc__)
        return 2
    fn, lo, hi = COMMANDS[argv[1]]
    args = argv[2:]
    if not lo <= len(args) <= hi:
        sys.stderr.write(__doc__)
        return 2
    try:
        fn(*args)
    except SystemExit as e:
        sys.stderr.write("%s\n" % e)
        return 1
    except Exception as e:  # unreadable workbook: a test failure, not a crash
        sys.stderr.write("xlsx_read: %s: %s\n" % (type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
