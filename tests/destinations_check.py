#!/usr/bin/python3
"""destinations_check: the destination table against libphonenumber.

Test-only.  Run by `make test` (tests/run.sh) with Debian's /usr/bin/python3,
python3-phonenumbers and python3-rstr, inside the throwaway PostgreSQL of
tests/pgtmp.sh (PGHOST...).  It checks the table as loaded in PostgreSQL by
the real `acbill migrate` ($ACBILL), not the CSV:

- migration: a fresh database gets exactly sql/seed/destinations.csv and
  sql/seed/destination_lengths.csv (the files the unit tests load); a
  database at version 6 (seeded by 002) whose operator added and changed
  rows gets the generated rows by 007, 013 and 018 and keeps the
  operator's;
  sql/seed/gen-seed.sh still reproduces 002 byte for byte from
  sql/seed/destinations_v1.csv, the rows 007 deletes.
- sampling: for every region libphonenumber knows, random numbers are drawn
  from each number type's national-number pattern (rstr, seeded by the
  region, so every run draws the same numbers) and kept when
  libphonenumber calls them valid; under longest-prefix match, then the
  length row (ref.destination_lengths) of that prefix for the number's
  digit count, as the job does:
    * in each Zone A country, no premium-rate, shared-cost, UAN, VoIP,
      personal, pager or voicemail number is pool-eligible (country in
      Zone A and kind geographic, mobile or toll_free: docs/billing-rules.md 3 rule 10);
    * no number of a region other than US and CA is classified US or CA;
    * every valid number has a destination;
    * in each Zone A country, under 1 % of the mobile and fixed-line
      numbers get a kind that cannot draw on the pool (the length rows;
      the few left are listed with their prefix);
    * in every region, no fixed-line or mobile number gets a kind that
      cannot draw on the pool (China's 10 10XXX and 754 96XXXXX
      fixed lines, whose prefixes are shared cost, are told apart by
      their length rows);
    * in the NANP, every number gets its own country: Canada's 7-digit
      UAN 310-XXXX, valid as +1 310 XXXX (8 digits), is CA, not the US
      area code 310's (migration 018).

The generator reads a newer libphonenumber (the npm package named in
migration 007) than the Debian package sampled here; where the two
disagree, tests/fixtures/destinations_known_differences.csv lists the
ranges and why.  A listed difference excuses the numbers of its prefix with
exactly its two labels, and is itself checked against the table, so the
list cannot go stale silently.  NANP numbers of every length
libphonenumber calls valid are sampled (10 digits after +1, and Canada's
7-digit UAN).

Prints a CUnit-like line per check and closes with
`destinations_check: N passed, M failed`.  ACBILL_DEST_SAMPLES scales the
numbers drawn per type (default 400 in Zone A and the NANP, a quarter of
that elsewhere).
"""
import csv
import io
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

import phonenumbers
import rstr
from phonenumbers import PhoneNumberType as T

try:
    import re._parser as sre_parse
except ImportError:                                   # Python < 3.11
    import sre_parse

SRC = os.environ.get("ACBILL_SRC") or \
    os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACBILL = os.environ.get("ACBILL") or os.path.join(SRC, "bin", "acbill")
SAMPLES = int(os.environ.get("ACBILL_DEST_SAMPLES", "400"))

# docs/billing-rules.md 2: libphonenumber's types -> ref.destinations.kind
KIND = {
    T.FIXED_LINE: "geographic", T.FIXED_LINE_OR_MOBILE: "geographic",
    T.MOBILE: "mobile", T.TOLL_FREE: "toll_free", T.PREMIUM_RATE: "premium",
    T.SHARED_COST: "shared_cost", T.PERSONAL_NUMBER: "personal",
    T.PAGER: "personal", T.VOIP: "non_geographic",
    T.UAN: "non_geographic", T.VOICEMAIL: "non_geographic",
}
ELIGIBLE = ("geographic", "mobile", "toll_free")
TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
         "personal_number", "voip", "pager", "uan", "voicemail")
TYPE_NAME = {v: k for k, v in vars(T).items() if k.isupper()}
NOT_ELIGIBLE_TYPES = (T.PREMIUM_RATE, T.SHARED_COST, T.UAN, T.VOIP,
                      T.PERSONAL_NUMBER, T.PAGER, T.VOICEMAIL)

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"  Test: {name} ...passed")
    else:
        failed += 1
        print(f"  Test: {name} ...FAILED")
        if detail:
            for line in detail.rstrip("\n").split("\n"):
                print(f"    {line}")
    sys.stdout.flush()


# ------------------------------------------------------------- database

def psql(db, sql):
    out = subprocess.run(
        ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
        capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"psql {db}: {out.stderr.strip()}")
    return out.stdout


def fresh_db(name):
    psql("postgres", f"DROP DATABASE IF EXISTS {name}")
    psql("postgres", f"CREATE DATABASE {name}")


def migrate(db, sql_dir=None):
    env = dict(os.environ)
    if sql_dir:
        env["ACBILL_SQL_DIR"] = sql_dir
    start = time.monotonic()
    out = subprocess.run([ACBILL, "migrate", "--db", f"dbname={db}"],
                         capture_output=True, text=True, env=env)
    took = time.monotonic() - start
    if out.returncode != 0:
        raise RuntimeError(f"acbill migrate: {out.stderr.strip()}")
    return took


def table(db):
    text = psql(db, "COPY (SELECT prefix, coalesce(country, ''), kind "
                    "FROM ref.destinations ORDER BY prefix) TO STDOUT "
                    "WITH (FORMAT csv)")
    return {r[0]: (r[1], r[2]) for r in csv.reader(io.StringIO(text))}


def lengths_table(db):
    text = psql(db, "COPY (SELECT prefix, digits, coalesce(country, ''), "
                    "kind FROM ref.destination_lengths ORDER BY prefix, "
                    "digits) TO STDOUT WITH (FORMAT csv)")
    return {(r[0], int(r[1])): (r[2], r[3])
            for r in csv.reader(io.StringIO(text))}


def read_lengths_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {(r["prefix"], int(r["digits"])): (r["country"], r["kind"])
                for r in csv.DictReader(f)}


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {r["prefix"]: (r["country"], r["kind"])
                for r in csv.DictReader(f)}


def diff(a, b, limit=10):
    """The first differences of two {prefix: label} tables, as text."""
    lines = []
    for p in sorted(set(a) | set(b)):
        if a.get(p) != b.get(p):
            lines.append(f"{p}: {a.get(p)} != {b.get(p)}")
            if len(lines) == limit:
                break
    return "\n".join(lines)


def migration_checks():
    print("\nSuite: migrations 007, 013 and 018")
    generated = read_csv(os.path.join(SRC, "sql/seed/destinations.csv"))
    gen_lengths = read_lengths_csv(
        os.path.join(SRC, "sql/seed/destination_lengths.csv"))
    v1 = read_csv(os.path.join(SRC, "sql/seed/destinations_v1.csv"))

    fresh_db("acbill_dest_fresh")
    took = migrate("acbill_dest_fresh")
    loaded = table("acbill_dest_fresh")
    lengths = lengths_table("acbill_dest_fresh")
    print(f"  (fresh `acbill migrate`: {took:.2f} s, "
          f"{len(loaded)} destinations, {len(lengths)} length rows)")
    check("fresh database holds sql/seed/destinations.csv",
          loaded == generated, diff(loaded, generated))
    check("fresh database holds sql/seed/destination_lengths.csv",
          lengths == gen_lengths and len(lengths) > 0,
          diff(lengths, gen_lengths))
    check("every length row's prefix is a destination, its digits at "
          "least the prefix's", all(p in loaded and n >= len(p)
                                    for p, n in lengths))
    check("every version 1 base row (calling codes, territories, NANP "
          "area codes) keeps its prefix", set(v1) <= set(loaded),
          " ".join(sorted(set(v1) - set(loaded))[:20]))
    check("no row for plain 1 (an unknown NANP area code has none)",
          "1" not in loaded)

    # A database migrated to version 6 and then edited by the operator.
    tmp = tempfile.mkdtemp(prefix="acbill-dest-")
    try:
        os.mkdir(os.path.join(tmp, "migrations"))
        mig = os.path.join(SRC, "sql", "migrations")
        for name in sorted(os.listdir(mig)):
            if name.endswith(".sql") and name[:3].isdigit() and \
                    int(name[:3]) <= 6:
                os.symlink(os.path.join(mig, name),
                           os.path.join(tmp, "migrations", name))
        fresh_db("acbill_dest_upgrade")
        migrate("acbill_dest_upgrade", tmp)
        before = table("acbill_dest_upgrade")
        check("version 6 holds the version 1 seed", before == v1,
              diff(before, v1))
        psql("acbill_dest_upgrade",
             "INSERT INTO ref.destinations VALUES "
             "('4499999', 'GB', 'geographic'), ('1876', 'JM', 'premium') "
             "ON CONFLICT (prefix) DO UPDATE SET kind = excluded.kind")
        took = migrate("acbill_dest_upgrade")
        after = table("acbill_dest_upgrade")
        after_lengths = lengths_table("acbill_dest_upgrade")
        print(f"  (007 on a seeded database: {took:.2f} s)")
    finally:
        shutil.rmtree(tmp)
    want = dict(generated)
    want["4499999"] = ("GB", "geographic")     # added by the operator
    want["1876"] = ("JM", "premium")           # changed by the operator
    check("007 replaces the seed and keeps the operator's rows",
          after == want, diff(after, want))
    check("013 and 018 add the length rows on an upgraded database",
          after_lengths == gen_lengths, diff(after_lengths, gen_lengths))
    check("a version 1 row relabelled by libphonenumber is replaced",
          v1.get("447509") == ("JE", "geographic") and
          after.get("447509") == generated.get("447509") and
          generated.get("447509") != v1.get("447509"))

    got = subprocess.run(["sh", os.path.join(SRC, "sql/seed/gen-seed.sh")],
                         capture_output=True).stdout
    with open(os.path.join(mig, "002_reference_seed.sql"), "rb") as f:
        check("gen-seed.sh reproduces migration 002 from "
              "destinations_v1.csv", got == f.read())
    with open(os.path.join(mig, "007_destinations_libphonenumber.sql"),
              encoding="utf-8") as f:
        head = f.read(400)
    check("migration 007 names its libphonenumber package and version",
          "google-libphonenumber 3." in head)
    return loaded, lengths


# ------------------------------------------------------------- sampling

def lookup(dest, lengths, digits):
    """(prefix, (country, kind)) of an E.164 number's digits: its longest
    destination prefix, then that prefix's length row for its digit count
    (rating_ref_destination)."""
    for n in range(min(len(digits), 15), 0, -1):
        got = dest.get(digits[:n])
        if got is not None:
            return digits[:n], lengths.get((digits[:n], len(digits)), got)
    return None, None


def sample_region(args):
    """Valid numbers drawn from one region's patterns: a list of (digits,
    region, libphonenumber type)."""
    region, count = args
    md = phonenumbers.PhoneMetadata.metadata_for_region(region)
    cc = md.country_code
    gen = rstr.Rstr(random.Random("acbill " + region))
    out = []
    for attr in TYPES:
        desc = getattr(md, attr)
        if desc is None or not desc.national_number_pattern:
            continue
        tree = sre_parse.parse(desc.national_number_pattern)
        seen = set()
        for _ in range(count):
            if hasattr(gen, "_build_string"):     # xeger, parsed once
                nsn = gen._build_string(tree)
                gen._cache.clear()
            else:
                nsn = gen.xeger(desc.national_number_pattern)
            digits = f"{cc}{nsn}"
            if nsn in seen or len(digits) > 15:
                continue
            seen.add(nsn)
            num = phonenumbers.parse("+" + digits)
            if not phonenumbers.is_valid_number(num):
                continue
            out.append((digits, phonenumbers.region_code_for_number(num),
                        phonenumbers.number_type(num)))
    return region, out


def sampling_checks(dest, lengths):
    print("\nSuite: libphonenumber sample "
          f"(python3-phonenumbers {phonenumbers.__version__})")
    with open(os.path.join(SRC, "sql/seed/zone_a.csv"),
              encoding="utf-8") as f:
        zone_a = {r["country"] for r in csv.DictReader(f)}
    with open(os.path.join(SRC, "tests/fixtures/"
                           "destinations_known_differences.csv"),
              encoding="utf-8") as f:
        known = [r for r in csv.DictReader(
            line for line in f if not line.startswith("#"))]

    # A listed difference must still describe the table.
    for k in known:
        _, got = lookup(dest, lengths, k["prefix"] + "0" * 15)
        check(f"known difference {k['prefix']}: table gives "
              f"{k['table_country']} {k['table_kind']}",
              got == (k["table_country"], k["table_kind"]),
              f"table gives {got}")

    def excused(digits, expect, got):
        return any(digits.startswith(k["prefix"]) and
                   expect == (k["lib_country"], k["lib_kind"]) and
                   got == (k["table_country"], k["table_kind"])
                   for k in known)

    nanp = set(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
    regions = sorted(r for r in phonenumbers.SUPPORTED_REGIONS)
    jobs = [(r, SAMPLES if r in zone_a or r in nanp else
             max(1, SAMPLES // 4)) for r in regions]
    start = time.monotonic()
    with multiprocessing.Pool(min(2, os.cpu_count() or 1)) as pool:
        results = dict(pool.map(sample_region, jobs, chunksize=4))
    took = time.monotonic() - start

    total = exact = excused_n = 0
    bad = {"eligible": {}, "usca": {}, "nodest": {}, "closed": {},
           "nanp": {}}
    # Zone A mobile and fixed-line numbers: region -> [count, closed],
    # closed those whose kind cannot draw on the pool (a length the
    # length rows could not single out); and the closed ones.
    plain = {}
    closed = {}
    for region in regions:
        for digits, reg, typ in results[region]:
            total += 1
            expect = (reg, KIND[typ])
            prefix, got = lookup(dest, lengths, digits)
            if got == expect:
                exact += 1
            if reg in zone_a and typ in (T.MOBILE, T.FIXED_LINE,
                                         T.FIXED_LINE_OR_MOBILE):
                mine = plain.setdefault((reg, KIND[typ]), [0, 0])
                mine[0] += 1
                if got is None or got[0] not in zone_a or \
                        got[1] not in ELIGIBLE:
                    mine[1] += 1
                    closed.setdefault((reg, KIND[typ]), []).append(
                        f"+{digits} ({TYPE_NAME.get(typ, typ)}, "
                        f"{len(digits)} digits): prefix {prefix} gives "
                        f"{got}")
            if got is None:
                bad["nodest"].setdefault(reg, []).append(
                    f"+{digits} {expect}: no destination")
                continue
            problems = []
            if reg in zone_a and typ in NOT_ELIGIBLE_TYPES and \
                    got[0] in zone_a and got[1] in ELIGIBLE:
                problems.append("eligible")
            if reg not in ("US", "CA") and got[0] in ("US", "CA"):
                problems.append("usca")
            if typ in (T.MOBILE, T.FIXED_LINE, T.FIXED_LINE_OR_MOBILE) and \
                    got[1] not in ELIGIBLE:
                problems.append("closed")
            if reg in nanp and got[0] != reg:
                problems.append("nanp")
            for p in problems:
                if excused(digits, expect, got):
                    excused_n += 1
                    continue
                bad[p].setdefault(reg, []).append(
                    f"+{digits} {expect[0]} {expect[1]} "
                    f"({TYPE_NAME.get(typ, typ)}): prefix {prefix} gives "
                    f"{got[0]} {got[1]}")
    print(f"  ({total} valid numbers in {len(regions)} regions drawn in "
          f"{took:.1f} s; {exact} ({100.0 * exact / max(total, 1):.1f} %) "
          f"get exactly their libphonenumber country and kind; "
          f"{excused_n} excused by a known difference)")

    def per_region(name, key, which):
        for region in which:
            errs = bad[key].get(region, [])
            check(f"{region}: {name}", not errs,
                  "\n".join(errs[:10]) +
                  (f"\n... {len(errs)} in all" if len(errs) > 10 else ""))

    per_region("no premium, shared-cost, UAN, VoIP, personal, pager or "
               "voicemail number is pool-eligible", "eligible",
               sorted(zone_a & set(regions)))
    per_region("no number is classified US or CA", "usca",
               [r for r in regions if r not in ("US", "CA")])
    per_region("every valid number has a destination", "nodest", regions)
    per_region("no fixed-line or mobile number gets a kind that cannot "
               "draw on the pool", "closed", regions)
    per_region("every NANP number gets its own country", "nanp",
               sorted(nanp & set(regions)))
    # The length rows: a Zone A mobile or fixed-line number draws on the
    # pool.  Before them, 71 % of Italian mobiles were voicemail-typed.
    n_all = sum(v[0] for v in plain.values())
    n_closed = sum(v[1] for v in plain.values())
    print(f"  ({n_all} Zone A mobile and fixed-line numbers, {n_closed} "
          f"({100.0 * n_closed / max(n_all, 1):.2f} %) of them get a kind "
          f"that cannot draw on the pool)")
    for (region, kind), (n, k) in sorted(plain.items()):
        if k:
            print(f"    {region} {kind}: {k} of {n} "
                  f"({100.0 * k / n:.1f} %), e.g. "
                  f"{'; '.join(closed[(region, kind)][:3])}")
    for region, kind in (("IT", "mobile"), ("IT", "geographic"),
                         ("JP", "mobile"), ("IE", "mobile"),
                         ("DE", "mobile")):
        n, k = plain.get((region, kind), [0, 0])
        check(f"{region} {kind}: under 1 % cannot draw on the pool "
              f"({k} of {n})", n > 0 and k * 100 < n,
              "\n".join(closed.get((region, kind), [])[:10]))
    bad_regions = sorted(r for r, kind in plain
                         if plain[(r, kind)][1] * 100 >=
                         plain[(r, kind)][0])
    check("every Zone A country: under 1 % of its mobile and fixed-line "
          "numbers cannot draw on the pool", not bad_regions,
          "\n".join(f"{r}: " + "; ".join(
              c for kind in ("mobile", "geographic")
              for c in closed.get((r, kind), [])[:5])
              for r in sorted(set(bad_regions))))
    check("Zone A countries all sampled",
          zone_a <= set(regions), str(sorted(zone_a - set(regions))))


def main():
    try:
        dest, lengths = migration_checks()
    except Exception as e:                             # report, count, go on
        check("migration 007", False, str(e))
        dest = read_csv(os.path.join(SRC, "sql/seed/destinations.csv"))
        lengths = read_lengths_csv(
            os.path.join(SRC, "sql/seed/destination_lengths.csv"))
    sampling_checks(dest, lengths)
    print(f"\ndestinations_check: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
