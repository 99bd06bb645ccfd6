"""Compare mdp's tick, volume and value bars with mlfinpy's (the same definition) on one file.

mlfinpy (López de Prado's standard bars, as in mlfinlab) is not a dependency of this project:
run this in a throwaway environment that has it, with bars exported by ``mdp bars``::

    uv venv /tmp/mlfin-env -p 3.11
    VIRTUAL_ENV=/tmp/mlfin-env uv pip install mlfinpy scikit-learn  # mlfinpy imports sklearn
    ES=../shared/data/es-trades-2013-09-01.csv.gz
    mdp run -i $ES --symbol ES --sink sqlite:///es.db -r 100tick,1000tick,10000tick,\\
    500volume,5000volume,50000volume,1000000value,10000000value,100000000value
    mdp bars -S sqlite:///es.db --complete -f csv -o es-bars.csv
    /tmp/mlfin-env/bin/python bench/compare_mlfinpy.py $ES es-bars.csv

mlfinpy writes only the bars that reached their threshold (hence ``--complete``) and stamps a
bar with its closing tick's time (mdp's ``end_ts``). Prints, per resolution, both bar counts and
the largest difference of each field.
"""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

_BUILDERS = {"tick": "get_tick_bars", "volume": "get_volume_bars", "value": "get_dollar_bars"}


def main(trades_path: str, bars_path: str) -> int:
    pd: Any = importlib.import_module("pandas")
    standard: Any = importlib.import_module("mlfinpy.data_structure.standard_bars")
    trades = pd.read_csv(trades_path)
    trades.columns = ["date_time", "price", "volume"]
    ours = pd.read_csv(bars_path)
    worst = 0.0
    print(f"{'resolution':16} {'mdp':>7} {'mlfinpy':>8}  max |diff| end_ts  ohlc  volume  trades")
    for label in sorted(set(ours["resolution"]), key=_order):
        match = re.fullmatch(r"([0-9.]+)(tick|volume|value)", label)
        if match is None:
            continue
        build = getattr(standard, _BUILDERS[match.group(2)])
        theirs = build(trades, threshold=float(match.group(1)), verbose=False)
        mine = ours[ours["resolution"] == label].sort_values("ts").reset_index(drop=True)
        if len(mine) != len(theirs):
            print(f"{label:16} {len(mine):7} {len(theirs):8}  bar counts differ")
            worst = float("inf")
            continue
        end = pd.to_datetime(mine["end_ts"], utc=True).dt.tz_localize(None)
        their_end = pd.to_datetime(theirs["date_time"])
        diffs = [
            (end - their_end).abs().max().total_seconds(),
            max((mine[c] - theirs[c]).abs().max() for c in ("open", "high", "low", "close")),
            (mine["volume"] - theirs["volume"]).abs().max(),
            (mine["trades"] - theirs["cum_ticks"]).abs().max(),
        ]
        worst = max(worst, *diffs)
        cells = "  ".join(f"{d:g}" for d in diffs)
        print(f"{label:16} {len(mine):7} {len(theirs):8}  {cells}")
    print("identical" if worst == 0 else f"largest difference {worst:g}")
    return 0 if worst == 0 else 1


def _order(label: str) -> tuple[str, float]:
    number = re.match(r"[0-9.]+", label)
    return (label.lstrip("0123456789."), float(number.group(0)) if number else 0.0)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
