#!/usr/bin/env python3
"""Generates the destination table (docs/billing-rules.md 2, ref.destinations) from
libphonenumber's number-type metadata.

    gen-destinations.py METADATA.json

METADATA.json is what sql/seed/libphonenumber-metadata.js prints (the
metadata of the npm package google-libphonenumber).  Writes
sql/seed/destinations.csv (`prefix,country,kind`) and the seed migration
sql/migrations/007_destinations_libphonenumber.sql, and the length rows
sql/seed/destination_lengths.csv (`prefix,digits,country,kind`),
sql/migrations/013_destination_lengths.sql (ref.destination_lengths, the
job's addition to docs/billing-rules.md 2's reference data) and
sql/migrations/018_destination_lengths_nanp_short.sql; prints a summary on
stderr (with GEN_DEBUG=1 also each calling code's row count and each
prefix resolved as below).  Run by `make seed`.  The same input gives the
same bytes.

How:
- For each country calling code, each region sharing it and each number
  type, the national-number pattern (a regular expression) is compiled to
  a deterministic automaton over the digits.  The regular expressions are
  parsed by Python's own parser (re._parser); only the automaton
  construction is ours.
- A number's label (region, kind) follows libphonenumber exactly: the
  first region of the calling code whose leading digits match, or that
  gives the number a type; the type in libphonenumber's order (premium
  rate, toll free, shared cost, VoIP, personal number, pager, UAN,
  voicemail, fixed line, mobile), each within its possible lengths.
  Numbers libphonenumber calls invalid, and those longer than E.164's 15
  digits, may take any label.
- The prefixes are expanded digit by digit; a prefix all of whose valid
  completions share one label is not expanded further.  Where a shorter
  valid number of one label is the beginning of longer ones of another
  (the labels differ only by length, and no prefix up to LOOKAHEAD digits
  longer has fewer labels, not counting extensions of a valid number),
  no short prefix tells them apart: the prefix gets one label, a kind
  that cannot draw on the pool if the numbers have one, else the label of
  most numbers (resolve()); the length rows below then tell them apart.
  NANP numbers have 10 digits after the +1.  A dynamic
  programme over that tree (as in optimal routing-table construction)
  then picks the fewest rows under longest-prefix match; on a tie, the
  row is placed deeper, so that invalid numbers keep the broader label.
- Base rows: every row of destinations_v1.csv (the version 1 table: each
  country calling code, the territories sharing a code, every NANP area
  code) stays, with its label, so that a number libphonenumber does not
  type still has a destination.  An area code or territory prefix whose
  valid numbers libphonenumber gives one other label takes that label.
  There is no row for plain `1`.
- Length rows (length_rows()): for each row, the valid numbers whose
  longest matching row it is are counted by length; a length whose
  numbers all have one label other than the row's gets a row
  (prefix, E.164 digits, country, kind) that overrides the prefix's row
  for numbers of exactly that many digits.  Only prefixes resolve()
  settled, or rows above them, hold such numbers: 393 (IT non-geographic,
  voicemail of 13-14 digits) gets 11 and 12 digits mobile.  A length
  whose numbers keep several labels gets no row (the summary counts
  them; GEN_DEBUG=1 lists them).
- NANP lengths other than 10 (short_rows()): the rows above are built
  for +1 numbers of 10 digits; the other lengths libphonenumber calls
  valid (Canada's 7-digit UAN 310-XXXX, valid as +1 310 XXXX) get length
  rows the same way, written to their own migration
  sql/migrations/018_destination_lengths_nanp_short.sql (applied
  migrations never change) and added to destination_lengths.csv:
  1310 with 8 digits is CA non_geographic, not the area code's US
  geographic.

The mapping of libphonenumber's types: fixed line and fixed line or
mobile -> geographic, mobile -> mobile, toll free -> toll_free, premium
rate -> premium, shared cost -> shared_cost, personal number and pager ->
personal, VoIP, UAN and voicemail -> non_geographic.
"""
import csv
import io
import json
import os
import sys

try:
    import re._parser as sre_parse
    import re._constants as sre_c
except ImportError:                                   # Python < 3.11
    import sre_parse
    import sre_constants as sre_c

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CSV_OUT = os.path.join(HERE, "destinations.csv")
SQL_OUT = os.path.join(ROOT, "sql", "migrations",
                       "007_destinations_libphonenumber.sql")
BASE_CSV = os.path.join(HERE, "destinations_v1.csv")
LEN_CSV_OUT = os.path.join(HERE, "destination_lengths.csv")
LEN_SQL_OUT = os.path.join(ROOT, "sql", "migrations",
                           "013_destination_lengths.sql")
SHORT_SQL_OUT = os.path.join(ROOT, "sql", "migrations",
                             "018_destination_lengths_nanp_short.sql")
E164_MAX = 15

# libphonenumber's order of tests (getNumberTypeHelper), and the kind of docs/billing-rules.md 2.
TYPE_ORDER = [
    ("premium_rate", "premium"),
    ("toll_free", "toll_free"),
    ("shared_cost", "shared_cost"),
    ("voip", "non_geographic"),
    ("personal_number", "personal"),
    ("pager", "personal"),
    ("uan", "non_geographic"),
    ("voicemail", "non_geographic"),
]
DIGITS = "0123456789"
# E.164 numbers of the NANP have 10 digits after the +1.  The prefix rows
# (and migration 013's length rows) are built for those alone; the other
# lengths libphonenumber calls valid there (Canada's 7-digit UAN 310-XXXX,
# valid as +1 310 XXXX, 8 digits) get length rows of their own
# (short_rows(), migration 018), so that they are not US geographic.
NANP_LENGTH = 10
# Kinds that may draw on the pool (docs/billing-rules.md 3, rule 10).
ELIGIBLE = ("geographic", "mobile", "toll_free")
# How many digits further a prefix whose labels differ only by length is
# expanded looking for a shorter prefix with fewer labels.
LOOKAHEAD = 2


# ------------------------------------------------------------ automata

class Nfa:
    """Thompson automaton over the digits: eps[s] and step[s][digit]."""

    def __init__(self):
        self.eps = []
        self.step = []

    def state(self):
        self.eps.append([])
        self.step.append({})
        return len(self.eps) - 1

    def edge(self, a, digit, b):
        self.step[a].setdefault(digit, []).append(b)


def digit_set(items, pattern):
    """The digits an IN node (a character class) accepts."""
    out, negate = set(), False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            out.add(chr(av))
        elif op is sre_c.RANGE:
            out.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op is sre_c.CATEGORY and av is sre_c.CATEGORY_DIGIT:
            out.update(DIGITS)
        else:
            raise ValueError(f"{pattern!r}: unsupported class item {op}")
    if negate:
        out = set(DIGITS) - out
    return out & set(DIGITS)


def build(nfa, seq, start, pattern):
    """Adds the parsed sequence seq from state start; returns its end."""
    cur = start
    for op, av in seq:
        if op is sre_c.LITERAL or op is sre_c.IN:
            chars = ({chr(av)} & set(DIGITS) if op is sre_c.LITERAL
                     else digit_set(av, pattern))
            nxt = nfa.state()
            for ch in sorted(chars):
                nfa.edge(cur, ch, nxt)
            cur = nxt
        elif op is sre_c.SUBPATTERN:
            cur = build(nfa, av[-1], cur, pattern)
        elif op is sre_c.BRANCH:
            end = nfa.state()
            for alt in av[1]:
                nfa.eps[build(nfa, alt, cur, pattern)].append(end)
            cur = end
        elif op is sre_c.MAX_REPEAT or op is sre_c.MIN_REPEAT:
            lo, hi, sub = av
            for _ in range(lo):
                cur = build(nfa, sub, cur, pattern)
            if hi is sre_c.MAXREPEAT:
                loop = nfa.state()
                nfa.eps[cur].append(loop)
                nfa.eps[build(nfa, sub, loop, pattern)].append(loop)
                cur = loop
            elif hi > lo:
                end = nfa.state()
                nfa.eps[cur].append(end)
                for _ in range(hi - lo):
                    cur = build(nfa, sub, cur, pattern)
                    nfa.eps[cur].append(end)
                cur = end
        else:
            raise ValueError(f"{pattern!r}: unsupported regex element {op}")
    return cur


class Dfa:
    """Deterministic automaton: trans[s][d] (-1: no accepted completion),
    accept[s].  State 0 is the start; start is -1 when nothing is accepted.
    With prefix=True it accepts every string that begins with a match
    (libphonenumber's leading digits, matched with search() == 0)."""

    def __init__(self, pattern, prefix=False):
        self.pattern = pattern
        nfa = Nfa()
        start = nfa.state()
        end = build(nfa, sre_parse.parse(pattern), start, pattern)

        def closure(states):
            todo, seen = list(states), set(states)
            while todo:
                for t in nfa.eps[todo.pop()]:
                    if t not in seen:
                        seen.add(t)
                        todo.append(t)
            return frozenset(seen)

        ids, trans, accept = {}, [], []
        first = closure([start])
        ids[first] = 0
        order = [first]
        i = 0
        while i < len(order):
            cur = order[i]
            acc = end in cur
            row = []
            for d in DIGITS:
                if acc and prefix:
                    nxt = cur          # claimed: every extension matches
                else:
                    nxt = closure([t for s in cur
                                   for t in nfa.step[s].get(d, ())])
                if not nxt:
                    row.append(-1)
                    continue
                if nxt not in ids:
                    ids[nxt] = len(order)
                    order.append(nxt)
                row.append(ids[nxt])
            trans.append(row)
            accept.append(acc)
            i += 1
        # Prune the states from which nothing is accepted.
        live = [a for a in accept]
        changed = True
        while changed:
            changed = False
            for s, row in enumerate(trans):
                if not live[s] and any(t >= 0 and live[t] for t in row):
                    live[s] = changed = True
        self.trans = [[t if t >= 0 and live[t] else -1 for t in row]
                      for row in trans]
        self.accept = accept
        self.start = 0 if live[0] else -1


# ------------------------------------------------------ number labels

class CallingCode:
    """The regions of one country calling code and their automata.  A
    state is a tuple: one automaton state per (region, test)."""

    def __init__(self, cc, regions, meta, cache, nanp_length=NANP_LENGTH):
        self.cc = cc
        self.nanp_length = nanp_length    # None: every length is valid
        self.max_len = E164_MAX - len(cc)
        self.autos = []       # (Dfa)
        self.regions = []     # (region, ld index or None, [tests])
        for region in regions:
            md = meta[region]

            def auto(pattern, prefix=False):
                key = (pattern, prefix)
                if key not in cache:
                    cache[key] = Dfa(pattern, prefix)
                self.autos.append(cache[key])
                return len(self.autos) - 1

            ld = (auto(md["leading_digits"], True)
                  if md["leading_digits"] else None)
            types = md["types"]

            def test(name):
                if name not in types:
                    return None
                pattern, lengths = types[name]
                return (auto(pattern), frozenset(lengths))
            tests = {"general": test("general")}
            for name, _ in TYPE_ORDER:
                tests[name] = test(name)
            tests["fixed_line"] = test("fixed_line")
            tests["mobile"] = test("mobile")
            self.regions.append((region, ld, tests,
                                 md["same_mobile_and_fixed"]))
        self.start = tuple(a.start for a in self.autos)
        self.memo = {}

    def step(self, state, d):
        di = ord(d) - 48
        return tuple(-1 if s < 0 else a.trans[s][di]
                     for s, a in zip(state, self.autos))

    def _match(self, state, length, test):
        if test is None:
            return False
        i, lengths = test
        s = state[i]
        return s >= 0 and self.autos[i].accept[s] and \
            (not lengths or length in lengths)

    def _type(self, state, length, tests, same):
        """libphonenumber's getNumberTypeHelper: the kind of docs/billing-rules.md 2 or None."""
        if not self._match(state, length, tests["general"]):
            return None
        for name, kind in TYPE_ORDER:
            if self._match(state, length, tests[name]):
                return kind
        if self._match(state, length, tests["fixed_line"]):
            return "geographic"
        if not same and self._match(state, length, tests["mobile"]):
            return "mobile"
        return None

    def label(self, state, length):
        """(region, kind) of a complete national number, None if invalid."""
        if length == 0 or (self.cc == "1" and self.nanp_length and
                           length != self.nanp_length):
            return None
        for region, ld, tests, same in self.regions:
            if ld is not None:
                s = state[ld]
                if s >= 0 and self.autos[ld].accept[s]:
                    kind = self._type(state, length, tests, same)
                    return (region, kind) if kind else None
            else:
                kind = self._type(state, length, tests, same)
                if kind:
                    return (region, kind)
        return None

    def alive(self, state):
        return any(s >= 0 for s in state)

    def _by_length(self, state, length):
        """{label: {number length: count}} of the valid numbers that begin
        with this prefix (memoised on the automaton state)."""
        key = (state, length)
        got = self.memo.get(key)
        if got is not None:
            return got
        out = {}
        own = self.label(state, length)
        if own:
            out[own] = {length: 1}
        if length < self.max_len:
            for d in DIGITS:
                nxt = self.step(state, d)
                if not self.alive(nxt):
                    continue
                for lab, counts in self._by_length(nxt, length + 1).items():
                    mine = out.setdefault(lab, {})
                    for n, k in counts.items():
                        mine[n] = mine.get(n, 0) + k
        self.memo[key] = out
        return out

    def labels(self, state, length):
        """The labels of all valid numbers that begin with this prefix."""
        return frozenset(self._by_length(state, length))

    def length_only(self, state, length):
        """True when the labels differ only by the numbers' length: for
        each length there is one label (a shorter number of one type is
        the beginning of longer numbers of another)."""
        seen = set()
        for counts in self._by_length(state, length).values():
            if seen & counts.keys():
                return False
            seen |= counts.keys()
        return True

    def progress(self, state, length, depth):
        """True when a prefix at most `depth` digits longer has fewer (but
        some) labels, not counting the prefixes that extend a valid number
        (telling a number from its extensions takes ten rows)."""
        mine = self.labels(state, length)
        todo = [(state, length)]
        for _ in range(depth):
            nxt_level = []
            for st, n in todo:
                if n >= self.max_len:
                    continue
                for d in DIGITS:
                    nxt = self.step(st, d)
                    if not self.alive(nxt):
                        continue
                    labs = self.labels(nxt, n + 1)
                    if labs and labs != mine:
                        return True
                    if self.label(nxt, n + 1) is None:
                        nxt_level.append((nxt, n + 1))
            todo = nxt_level
        return False

    def resolve(self, state, length):
        """The one label for a prefix whose labels no short prefix tells
        apart: a kind that is not pool-eligible, if the numbers of one
        country include one, else the label of the most numbers."""
        by = self._by_length(state, length)
        total = {lab: sum(c.values()) for lab, c in by.items()}
        countries = {lab[0] for lab in by}
        if len(countries) == 1:
            closed = [lab for lab in by if lab[1] not in ELIGIBLE]
            if closed:
                total = {lab: total[lab] for lab in closed}
        return max(sorted(total), key=lambda lab: total[lab])


# ------------------------------------------------ tree and minimisation

OTHER = ("", "")    # stands for any label that is not in a subtree


class Node:
    __slots__ = ("prefix", "labels", "own", "children", "forced", "cost",
                 "no_row", "state", "length")

    def __init__(self, prefix, labels, own, state, length):
        self.prefix = prefix
        self.state = state        # automaton state of the prefix
        self.length = length      # digits of the prefix after the code
        self.labels = labels
        self.own = own            # label of the prefix as a number, or None
        self.children = []
        self.forced = None        # label of a base row that must exist
        self.cost = None          # {inherited label: rows}
        self.no_row = False       # no row may have this prefix


def expand(code, prefix, state, length, base, above, resolved=None):
    """The tree of prefixes under prefix (national part length `length`);
    base: {prefix: label} of the base rows, above: their proper prefixes;
    resolved: the one label an ancestor chose for its numbers."""
    labels = code.labels(state, length)
    own = code.label(state, length)
    if resolved is not None:
        labels = frozenset([resolved]) if labels else labels
        own = resolved if own else None
    elif len(labels) > 1 and code.length_only(state, length) and \
            not code.progress(state, length, LOOKAHEAD):
        resolved = code.resolve(state, length)
        if os.environ.get("GEN_DEBUG"):
            print(f"gen-destinations: {prefix}: {sorted(labels)} -> "
                  f"{resolved}", file=sys.stderr)
        labels, own = frozenset([resolved]), resolved if own else None
    node = Node(prefix, labels, own, state, length)
    node.forced = base.get(prefix)
    # No row shorter than an area code in the NANP: a +1 number whose area
    # code is unknown has no destination.
    node.no_row = code.cc == "1" and len(prefix) < 4
    below = prefix in above
    if node.forced is not None and len(node.labels) == 1 and \
            prefix != code.cc:
        # An area code or territory that libphonenumber types whole.
        (only,) = node.labels
        if only != node.forced:
            print(f"gen-destinations: {prefix}: base row {node.forced} "
                  f"-> libphonenumber {only}", file=sys.stderr)
            node.forced = only
    mixed = len(node.labels) > 1 or (node.no_row and node.labels) or (
        node.forced is not None and node.labels and
        node.labels != {node.forced})
    if (mixed or below) and length < code.max_len:
        for d in DIGITS:
            nxt = code.step(state, d)
            if code.alive(nxt) or prefix + d in base or prefix + d in above:
                node.children.append(expand(code, prefix + d, nxt,
                                            length + 1, base, above, resolved))
    return node


def fits(own, label):
    return own is None or own == label


def solve(node):
    """Fills node.cost: the fewest rows for the subtree, per inherited
    label (the labels of the subtree, plus OTHER)."""
    for c in node.children:
        solve(c)

    def child_cost(lab):
        return sum(c.cost.get(lab, c.cost[OTHER]) for c in node.children)

    if not node.children:
        if node.forced is not None:
            node.cost = {OTHER: 1}
            return
        lab = next(iter(node.labels)) if node.labels else None
        node.cost = {OTHER: 1 if lab else 0}
        if lab:
            node.cost[lab] = 0
        return
    if node.forced is not None:
        node.cost = {OTHER: 1 + child_cost(node.forced)}
        return
    best_row = None if node.no_row else min(
        (1 + child_cost(b) for b in node.labels if fits(node.own, b)),
        default=None)
    cost = {}
    for a in list(node.labels) + [OTHER]:
        norow = child_cost(a) if fits(node.own, a) and a != OTHER else None
        if a == OTHER and node.own is None:
            norow = child_cost(OTHER)
        options = [x for x in (norow, best_row) if x is not None]
        cost[a] = min(options)
    node.cost = cost


def emit(node, inherited, rows):
    """Chooses the rows top-down; on a tie, no row here (deeper rows)."""
    if node.forced is not None:
        rows.append((node.prefix, node.forced))
        for c in node.children:
            emit(c, node.forced, rows)
        return
    want = node.cost.get(inherited, node.cost[OTHER])
    if not node.children:
        if want:
            rows.append((node.prefix, next(iter(node.labels))))
        return

    def child_cost(lab):
        return sum(c.cost.get(lab, c.cost[OTHER]) for c in node.children)

    if fits(node.own, inherited) and \
            (inherited != OTHER or node.own is None) and \
            child_cost(inherited) == want:
        for c in node.children:
            emit(c, inherited, rows)
        return
    for b in sorted(node.labels):
        if fits(node.own, b) and 1 + child_cost(b) == want:
            rows.append((node.prefix, b))
            for c in node.children:
                emit(c, b, rows)
            return
    raise AssertionError(f"no choice at {node.prefix}")


def length_rows(code, tree, rows):
    """The length rows of one calling code: for each row (prefix, label),
    the numbers whose longest matching row it is are counted by length;
    each length whose valid numbers all have one label other than the
    row's gets (prefix, national length, label).  Only a prefix resolve()
    settled (or a row above one) holds numbers of another label, so these
    give each such length libphonenumber's label exactly.  Also returns
    the (prefix, length) pairs left mixed, with their count of numbers."""
    at = dict(rows)

    def merge(acc, more):
        for lab, counts in more.items():
            mine = acc.setdefault(lab, {})
            for n, k in counts.items():
                mine[n] = mine.get(n, 0) + k

    def residual(node):
        if not node.children:
            return code._by_length(node.state, node.length)
        acc = {}
        own = code.label(node.state, node.length)
        if own:
            acc[own] = {node.length: 1}
        for c in node.children:
            if c.prefix not in at:
                merge(acc, residual(c))
        return acc

    out, mixed = [], []
    todo = [tree]
    while todo:
        node = todo.pop()
        todo.extend(node.children)
        if node.prefix not in at:
            continue
        mine = at[node.prefix]
        by = residual(node)
        for n in sorted({n for counts in by.values() for n in counts}):
            labs = [lab for lab in sorted(by) if n in by[lab]]
            if len(labs) == 1:
                if labs[0] != mine:
                    out.append((node.prefix, n, labs[0]))
            elif any(lab != mine for lab in labs):
                mixed.append((node.prefix, n, {lab: by[lab][n]
                                               for lab in labs}))
    return out, mixed


def short_rows(cc, regions, meta, cache, tree, rows, strict):
    """The length rows of the NANP numbers whose length is not 10 after
    the +1 (migration 018): length_rows() again with every length
    libphonenumber calls valid, keeping the other lengths.  The tree and
    rows are those built for 10 digits; strict: their length rows, which
    the 10-digit rows of this pass must equal."""
    code = CallingCode(cc, regions, meta, cache, nanp_length=None)
    out, _ = length_rows(code, tree, rows)
    assert sorted(r for r in out if r[1] == NANP_LENGTH) == sorted(strict)
    return [r for r in out if r[1] != NANP_LENGTH]


# ------------------------------------------------------------- output

def read_base():
    with open(BASE_CSV, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if next(reader) != ["prefix", "country", "kind"]:
            sys.exit(f"{BASE_CSV}: bad header")
        return [tuple(r) for r in reader if r]


def lit(v):
    return "'" + v.replace("'", "''") + "'"


def values(rows):
    return ",\n".join(f"    ({lit(p)}, {lit(c)}, {lit(k)})" for p, c, k in rows)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen-destinations.py METADATA.json")
    with open(sys.argv[1], encoding="utf-8") as f:
        meta = json.load(f)
    base_rows = read_base()
    base = {p: (c, k) for p, c, k in base_rows}
    cache = {}
    rows = []
    lengths = []                # (prefix, E.164 digits, country, kind)
    shorts = []                 # the same, NANP lengths other than 10
    mixed = []
    for cc in sorted(meta["codes"], key=lambda c: (len(c), c)):
        regions = meta["codes"][cc]
        code = CallingCode(cc, regions, meta["regions"], cache)
        mine = {p: lab for p, lab in base.items() if p.startswith(cc)}
        if cc != "1" and cc not in mine:
            mine[cc] = (regions[0], "geographic")
            print(f"gen-destinations: {cc}: no base row, using "
                  f"{regions[0]}", file=sys.stderr)
        above = {p[:i] for p in mine for i in range(1, len(p))}
        tree = expand(code, cc, code.start, 0, mine, above)
        solve(tree)
        got = []
        emit(tree, OTHER, got)
        rows.extend((p, lab[0], lab[1]) for p, lab in got)
        lens, mix = length_rows(code, tree, got)
        lengths.extend((p, len(cc) + n, lab[0], lab[1])
                       for p, n, lab in lens)
        if cc == "1":
            shorts.extend((p, len(cc) + n, lab[0], lab[1]) for p, n, lab in
                          short_rows(cc, regions, meta["regions"], cache,
                                     tree, got, lens))
        mixed.extend((p, len(cc) + n, labs) for p, n, labs in mix)
        code.memo.clear()
        if os.environ.get("GEN_DEBUG"):
            print(f"gen-destinations: {cc}: {len(got)} rows", file=sys.stderr, flush=True)
    # Base rows of calling codes libphonenumber does not know.
    known = {p for p, _, _ in rows}
    for p, c, k in base_rows:
        if not any(p.startswith(cc) for cc in meta["codes"]) and \
                p not in known:
            rows.append((p, c, k))
    rows.sort()
    prefixes = [p for p, _, _ in rows]
    assert len(set(prefixes)) == len(prefixes), "duplicate prefix"
    source = f"{meta['package']} {meta['version']}"

    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["prefix", "country", "kind"])
    w.writerows(rows)
    with open(CSV_OUT, "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())

    with open(SQL_OUT, "w", encoding="utf-8") as f:
        f.write(
            "-- Destinations from libphonenumber's number-type metadata "
            "(SPEC section 2,\n"
            f"-- ref.destinations): {len(rows)} rows generated by "
            "sql/seed/gen-destinations.py from\n"
            f"-- the npm package {source}.  Do not edit by hand: "
            "run `make seed`.\n"
            "--\n"
            "-- The version 1 seed rows (migration 002, "
            "sql/seed/destinations_v1.csv)\n"
            "-- are replaced; rows the operator added or changed are kept "
            "(a generated\n"
            "-- row whose prefix the operator holds is not inserted).\n\n"
            "DELETE FROM ref.destinations d\n"
            "USING (VALUES\n" + values(base_rows) + "\n"
            ") AS v1 (prefix, country, kind)\n"
            "WHERE d.prefix = v1.prefix AND d.country = v1.country\n"
            "  AND d.kind = v1.kind;\n\n"
            "INSERT INTO ref.destinations (prefix, country, kind) VALUES\n"
            + values(rows) + "\nON CONFLICT (prefix) DO NOTHING;\n")

    lengths.sort()
    shorts.sort()
    assert len({(p, n) for p, n, _, _ in lengths + shorts}) == \
        len(lengths) + len(shorts)
    assert {p for p, _, _, _ in lengths + shorts} <= set(prefixes)
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["prefix", "digits", "country", "kind"])
    w.writerows(sorted(lengths + shorts))
    with open(LEN_CSV_OUT, "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())
    with open(LEN_SQL_OUT, "w", encoding="utf-8") as f:
        f.write(
            "-- Length-specific destinations (ref.destination_lengths, the "
            "job's addition to\n"
            "-- SPEC section 2's reference data): a number of exactly "
            "`digits` E.164 digits\n"
            "-- (country code included, masked '*' positions counted) "
            "whose longest\n"
            "-- matching ref.destinations prefix is `prefix` takes this "
            "country and kind\n"
            "-- instead of that row's.  Where a short valid number of one "
            "type is the\n"
            "-- beginning of longer numbers of another (Italian mobiles "
            "+39 3[2-8] have 9\n"
            "-- or 10 national digits, 11 and 12 are voicemail), no prefix "
            "tells them\n"
            "-- apart but the length does.\n"
            "--\n"
            f"-- {len(lengths)} rows generated by sql/seed/gen-destinations.py "
            f"from the npm package\n"
            f"-- {source} (as migration 007).\n"
            "-- Do not edit by hand: run `make seed`.\n"
            "-- Rows the operator added are kept; a row whose prefix is no "
            "longer a\n"
            "-- destination is not inserted.\n\n"
            "CREATE TABLE IF NOT EXISTS ref.destination_lengths (\n"
            "    prefix  text NOT NULL REFERENCES ref.destinations (prefix)\n"
            "                ON UPDATE CASCADE ON DELETE CASCADE,\n"
            "    digits  int NOT NULL CHECK (digits BETWEEN 1 AND 15),\n"
            "    country char(2),\n"
            "    kind    text NOT NULL CHECK (kind IN ('geographic', "
            "'mobile', 'toll_free',\n"
            "                 'premium', 'shared_cost', 'personal', "
            "'non_geographic')),\n"
            "    PRIMARY KEY (prefix, digits),\n"
            "    CHECK (digits >= length(prefix))\n"
            ");\n\n"
            "INSERT INTO ref.destination_lengths (prefix, digits, country, "
            "kind)\n"
            "SELECT v.prefix, v.digits, v.country, v.kind FROM (VALUES\n" +
            ",\n".join(f"    ({lit(p)}, {n}, {lit(c)}, {lit(k)})"
                        for p, n, c, k in lengths) +
            "\n) AS v (prefix, digits, country, kind)\n"
            "JOIN ref.destinations d ON d.prefix = v.prefix\n"
            "ON CONFLICT (prefix, digits) DO NOTHING;\n")
    with open(SHORT_SQL_OUT, "w", encoding="utf-8") as f:
        f.write(
            "-- Length rows for the NANP numbers that are not 10 digits after "
            "the +1\n"
            "-- (ref.destination_lengths, as migration 013): libphonenumber "
            "calls Canada's\n"
            "-- 7-digit UAN 310-XXXX valid as +1 310 XXXX (8 E.164 digits), "
            "which the\n"
            "-- area code row 1310 (US, Los Angeles) classed US geographic.\n"
            "--\n"
            f"-- {len(shorts)} row{'' if len(shorts) == 1 else 's'} "
            "generated by sql/seed/gen-destinations.py from the npm package\n"
            f"-- {source} (as migrations 007 and 013).\n"
            "-- Do not edit by hand: run `make seed`.\n"
            "-- Rows the operator added are kept; a row whose prefix is no "
            "longer a\n"
            "-- destination is not inserted.\n\n"
            "INSERT INTO ref.destination_lengths (prefix, digits, country, "
            "kind)\n"
            "SELECT v.prefix, v.digits, v.country, v.kind FROM (VALUES\n" +
            ",\n".join(f"    ({lit(p)}, {n}, {lit(c)}, {lit(k)})"
                        for p, n, c, k in shorts) +
            "\n) AS v (prefix, digits, country, kind)\n"
            "JOIN ref.destinations d ON d.prefix = v.prefix\n"
            "ON CONFLICT (prefix, digits) DO NOTHING;\n")

    kinds = {}
    for _, _, k in rows:
        kinds[k] = kinds.get(k, 0) + 1
    print(f"gen-destinations: {len(rows)} rows from {source}: " +
          ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
          file=sys.stderr)
    kinds = {}
    for _, _, _, k in lengths:
        kinds[k] = kinds.get(k, 0) + 1
    print(f"gen-destinations: {len(lengths)} length rows at "
          f"{len({p for p, _, _, _ in lengths})} prefixes: " +
          ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) +
          f"; {len(mixed)} (prefix, length) pairs keep several labels; "
          f"{len(shorts)} NANP rows for other lengths than 10 after +1",
          file=sys.stderr)
    if os.environ.get("GEN_DEBUG"):
        for p, n, labs in mixed:
            print(f"gen-destinations: mixed {p} {n}: {labs}",
                  file=sys.stderr)


if __name__ == "__main__":
    sys.setrecursionlimit(10000)
    main()
