"""What redaction costs per output: `kvlab.databricks.Redactor.redact` on the messages a notebook sends.

Every output message of a kernel that used ``dbutils.secrets`` passes through
the redactor (kvlab/databricks.py). This times it on the shapes a notebook
sends - a printed line, a 10 KB block of printed text, a rich display bundle
(text, HTML, JSON), a traceback - with 0, 1, 10 and 100 fetched values, and
prints microseconds per output. Nothing here asserts or fails on a number.
"""

from __future__ import annotations

import json
import secrets
import time

from kvlab.databricks import Redactor

LINE = {"name": "stdout", "text": "rows loaded: 42, rejected: 0, took 1.3 s\n"}
BLOCK = {"name": "stdout", "text": ("2026-12-01 12:00:00 INFO loaded partition 17 of 64 from landing/orders\n" * 140)}
BUNDLE = {"data": {"text/plain": "<DataFrame 20 rows x 5 columns>", "text/html": "<table>" + "<tr><td>1</td></tr>" * 200
                   + "</table>", "application/json": {"rows": list(range(200))}}, "metadata": {}}
TRACE = {"ename": "ValueError", "evalue": "login failed", "traceback": ["Traceback (most recent call last):"] +
         [f'  File "etl.py", line {n}, in step_{n}\n    run()' for n in range(30)]}
SHAPES = {"printed line": LINE, "10 KB printed": BLOCK, "display bundle": BUNDLE, "traceback": TRACE}


def per_output(redactor: Redactor, content: dict, seconds: float = 0.3) -> float:
    """Microseconds per redact() call, over enough calls to fill ``seconds``."""
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(100):
            redactor.redact(content)
        calls += 100
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    figures = {}
    print(f"{'output':16} " + " ".join(f"{n:>10} values" for n in (0, 1, 10, 100)))
    for shape, content in SHAPES.items():
        row = {}
        for count in (0, 1, 10, 100):
            redactor = Redactor()
            for _ in range(count):
                redactor.add(secrets.token_urlsafe(24))
            row[count] = per_output(redactor, content)
        figures[shape] = {str(k): round(v, 2) for k, v in row.items()}
        print(f"{shape:16} " + " ".join(f"{row[n]:14.1f} us" for n in (0, 1, 10, 100)))
    print(json.dumps({"microsecondsPerOutput": figures}))


if __name__ == "__main__":
    main()
