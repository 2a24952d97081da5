#!/usr/bin/env python3
"""bench/splice.py — put build/bench/results.md into bench/README.md,
between the "results:begin" and "results:end" marker comments."""
import os
import re
import sys

here = os.path.dirname(os.path.abspath(__file__))
res = os.environ.get("BENCH_OUT", os.path.join(here, "..", "build", "bench", "results.md"))
readme = os.path.join(here, "README.md")
with open(res) as f:
    table = f.read().strip()
# the file's own title is replaced by the README's "Latest results" heading
table = re.sub(r"\A# [^\n]*\n+", "", table)
# demote the result file's headings by one level under the README's section
table = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", table, flags=re.M)
with open(readme) as f:
    text = f.read()
new, n = re.subn(r"(<!-- results:begin -->\n).*?(\n<!-- results:end -->)",
                 lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
if n != 1:
    sys.exit("splice: markers not found in bench/README.md")
with open(readme, "w") as f:
    f.write(new)
print("bench/README.md updated")
