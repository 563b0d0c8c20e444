#!/usr/bin/env python3
"""Checks the regression tests' own rules, so a test cannot pass whatever the code does:
  * every ERROR in expected/*.out is followed (after its DETAIL, HINT, CONTEXT and LINE
    lines) by `\\echo :LAST_ERROR_SQLSTATE`, so a wrong SQLSTATE fails the test;
  * every INSERT into or DELETE from a foreign table in sql/*.sql shows what it did: it
    has RETURNING, or the next command is `\\echo :ROW_COUNT` (or, for a statement that
    fails, `\\echo :LAST_ERROR_SQLSTATE`), since pg_regress runs psql quietly (-q) and would
    not show "DELETE 1";
  * no sql file sets VERBOSITY terse or sqlstate, which hide the DETAIL and HINT the README
    promises, and none of the files of issue 14 (STRICT_FILES) hides warnings with
    client_min_messages = error (in the others that is printed as a note).
Prints `expected-rules: N passed, M failed`; exit 1 on failure."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parents[2]
problems: list[str] = []
notes: list[str] = []
checked = 0
# The files whose warnings must never be hidden (issue 14); the rule is a note elsewhere.
STRICT_FILES = {"init", "options", "scan", "modify", "errors", "envelope", "paging", "cancel",
                "security", "fast", "faults", "claims", "reports", "upgrade"}

# Error continuation lines: what follows an ERROR line before the next command.
CONT = re.compile(r"^(DETAIL|HINT|CONTEXT|LINE \d+|QUERY):|^\s|^PL/pgSQL function |"
                  r"^SQL (statement|function) |^COPY \S+, line \d+")

for out in sorted((root / "expected").glob("*.out")):
    lines = out.read_text().splitlines()
    for i, line in enumerate(lines):
        if not re.match(r"^(psql:[^ ]* )?ERROR:  ", line):
            continue
        checked += 1
        j = i + 1
        while j < len(lines) and CONT.match(lines[j]) and not lines[j].startswith("\\"):
            j += 1
        if j >= len(lines) or lines[j].strip() != "\\echo :LAST_ERROR_SQLSTATE":
            problems.append(f"{out.name}:{i + 1}: ERROR without \\echo :LAST_ERROR_SQLSTATE "
                            f"after it: {line[:90]}")

FOREIGN = re.compile(r"^\s*(INSERT\s+INTO|DELETE\s+FROM)\s+(\S+)", re.I)

# `\echo :LAST_ERROR_SQLSTATE` stands in for the row count only after a write
# that failed: after one that succeeded it prints a stale code (or 00000) and
# the count is lost.  So in the expected output, a write followed by that echo
# must have an ERROR between them.
for out in sorted((root / "expected").glob("*.out")):
    lines = out.read_text().splitlines()
    for i, line in enumerate(lines):
        if not FOREIGN.match(line):
            continue
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith(";"):
            j += 1
        k = j + 1
        while k < len(lines) and not lines[k].startswith("\\") and not lines[k].startswith("--"):
            if re.match(r"^(psql:[^ ]* )?ERROR:  ", lines[k]) or not lines[k].strip() \
                    or re.match(r"^[A-Z]+:  |^(DETAIL|HINT|CONTEXT):", lines[k]) is None:
                break
            k += 1
        if k < len(lines) and lines[k].strip() == "\\echo :LAST_ERROR_SQLSTATE":
            problems.append(f"{out.name}:{i + 1}: {line.split()[0].upper()} succeeded, but is followed "
                            "by \\echo :LAST_ERROR_SQLSTATE (a stale code), not :ROW_COUNT")
for sql in sorted((root / "sql").glob("*.sql")):
    text = sql.read_text()
    lines = text.splitlines()
    local = {m.lower() for m in re.findall(r"CREATE\s+(?:TEMP\s+)?TABLE\s+(\w+)", text, re.I)}
    in_do = False
    for i, line in enumerate(lines):
        if re.match(r"^\s*DO\s+\$\$", line):
            in_do = True
        if in_do:
            if re.search(r"END\s*\$\$", line):
                in_do = False
            continue
        if re.search(r"\\set\s+VERBOSITY\s+(terse|sqlstate)", line):
            problems.append(f"{sql.name}:{i + 1}: VERBOSITY {line.split()[-1]} hides DETAIL/HINT")
        if re.search(r"client_min_messages\s*(=|to)\s*'?error", line, re.I):
            msg = f"{sql.name}:{i + 1}: client_min_messages = error hides warnings"
            # A later test may hide a warning it says it checks another way;
            # the issue-14 files may not.
            (problems if sql.stem in STRICT_FILES else notes).append(msg)
        m = FOREIGN.match(line)
        if not m or m.group(2).split("(")[0].lower() in local:
            continue
        checked += 1
        # The statement runs to the line that ends with ";".
        j = i
        while j < len(lines) and not lines[j].rstrip().endswith(";"):
            j += 1
        stmt = " ".join(lines[i:j + 1])
        if re.search(r"\bRETURNING\b", stmt, re.I):
            continue
        k = j + 1
        while k < len(lines) and (not lines[k].strip() or lines[k].lstrip().startswith("--")):
            k += 1
        nxt = lines[k].strip() if k < len(lines) else ""
        if nxt not in ("\\echo :ROW_COUNT", "\\echo :LAST_ERROR_SQLSTATE"):
            problems.append(f"{sql.name}:{i + 1}: {m.group(1).upper()} without RETURNING or "
                            "\\echo :ROW_COUNT after it")

for p in problems:
    print(p, file=sys.stderr)
for n in notes:
    print(f"note: {n}", file=sys.stderr)
print(f"expected-rules: {checked - len(problems)} passed, {len(problems)} failed")
sys.exit(1 if problems else 0)
