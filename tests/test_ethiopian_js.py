"""The pages' Ethiopian calendar (static/js/i18n.js, run by node) writes every date as Python does."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from astegni.i18n.ethiopian import format_date

I18N_JS = Path(__file__).resolve().parent.parent / "static" / "js" / "i18n.js"
FIRST, LAST = date(1900, 1, 1), date(2100, 12, 31)
# Every day from FIRST to LAST, written in both languages, one line each.
SCRIPT = """
const I18n = require(process.argv[1]);
const lines = [];
for (let t = Date.UTC(%d, %d, %d); t <= Date.UTC(%d, %d, %d); t += 86400000) {
  const d = new Date(t);
  const [y, m, day] = [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate()];
  lines.push(I18n.formatDay(y, m, day, 'am') + '|' + I18n.formatDay(y, m, day, 'en'));
}
process.stdout.write(lines.join('\\n'));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_pages_and_the_server_agree_on_every_day_of_two_centuries() -> None:
    script = SCRIPT % (FIRST.year, FIRST.month - 1, FIRST.day, LAST.year, LAST.month - 1, LAST.day)
    result = subprocess.run(
        ["node", "-e", script, str(I18N_JS)], capture_output=True, text=True, check=True, timeout=60
    )
    lines = result.stdout.split("\n")
    assert len(lines) == (LAST - FIRST).days + 1
    for offset, line in enumerate(lines):
        day = FIRST + timedelta(days=offset)
        assert line == f"{format_date(day, 'am')}|{format_date(day, 'en')}", day
