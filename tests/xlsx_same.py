#!/usr/bin/env python3
"""xlsx_same.py DIR_A DIR_B: exit 0 when the two directories hold the same
file names and every workbook (*.xlsx) has the same parts with the same
bytes, but for the numbers of invoice documents (INV-YYYY-NNNNNN), which
follow the order workers finished in, and the created and modified times
of the document properties (a workbook's recorded issue time: two ledgers
issued at different moments); print the first difference and exit 1
otherwise.  Only Python's standard library (zipfile)."""
import os
import re
import sys
import zipfile

NUMBER = re.compile(rb"INV-[0-9]{4}-[0-9]{6}")
ISSUED = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*")


def main():
    a, b = sys.argv[1:3]
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        print("files differ:", names, sorted(os.listdir(b)))
        return 1
    for name in names:
        if not name.endswith(".xlsx"):
            continue
        za = zipfile.ZipFile(os.path.join(a, name))
        zb = zipfile.ZipFile(os.path.join(b, name))
        if za.namelist() != zb.namelist():
            print(name, "parts differ")
            return 1
        for part in za.namelist():
            pa, pb = za.read(part), zb.read(part)
            if part == "docProps/core.xml":
                pa, pb = ISSUED.sub(rb"\1", pa), ISSUED.sub(rb"\1", pb)
            if NUMBER.sub(b"N", pa) != NUMBER.sub(b"N", pb):
                print(name, part, "differs")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
