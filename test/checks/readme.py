#!/usr/bin/env python3
"""Checks that every SQL block the README marks with `<!-- tested: FILE -->`
appears verbatim in that test file, so the README's examples stay true.
psql meta-commands such as \\watch are skipped: pg_regress cannot run them
(a \\watch never ends). Prints `readme: N passed, M failed`; exit 1 on failure."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parents[2]
readme = (root / "README.md").read_text()
blocks = re.findall(r"<!-- tested: (\S+) -->\s*```sql\n(.*?)```", readme, re.S)
passed = failed = 0
for path, block in blocks:
    target = (root / path).read_text()
    sql = "\n".join(l for l in block.splitlines() if not l.startswith("\\")).strip()
    if sql in target:
        passed += 1
    else:
        failed += 1
        print(f"README block not found verbatim in {path}:\n{sql}\n", file=sys.stderr)
if not blocks:
    failed += 1
    print("no tested blocks found in README.md", file=sys.stderr)
print(f"readme: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
