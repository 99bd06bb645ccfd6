"""Render docs/volume-bars.png: 5,000-contract bars of the real E-mini trades beside 1m bars.

matplotlib is not a dependency of mdp; run this where it is installed (the throwaway
environment of ``bench/compare_mlfinpy.py`` has it), with CSVs written by ``mdp bars``::

    mdp run -i ../shared/data/es-trades-2013-09-01.csv.gz --symbol ES -r 1m,5000volume \\
        --sink sqlite:///es.db
    mdp bars -S sqlite:///es.db -r 5000volume --complete -f csv -o volume.csv
    mdp bars -S sqlite:///es.db -r 1m -f csv -o minute.csv
    /tmp/mlfin-env/bin/python docs/examples/plot_volume_bars.py volume.csv minute.csv
"""

from __future__ import annotations

import importlib
import sys
from typing import Any


def main(volume_csv: str, minute_csv: str, out: str = "docs/volume-bars.png") -> None:
    pd: Any = importlib.import_module("pandas")
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    volume = pd.read_csv(volume_csv, parse_dates=["ts", "end_ts"])
    minute = pd.read_csv(minute_csv, parse_dates=["ts"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[3, 2])
    top.plot(minute["ts"], minute["close"], color="0.75", lw=0.8, label="1m close")
    top.vlines(volume["end_ts"], volume["low"], volume["high"], color="tab:blue", lw=1.2)
    top.scatter(volume["end_ts"], volume["close"], s=6, color="tab:blue", label="5000volume bar")
    top.set_ylabel("ES price")
    top.legend(loc="upper left")
    top.set_title("E-mini S&P 500 trades, 2013-09-01/03: a bar every 5,000 contracts")
    minutes = (volume["end_ts"] - volume["ts"]).dt.total_seconds() / 60
    bottom.bar(volume["ts"], minutes, width=0.01, color="tab:blue")
    bottom.set_yscale("log")
    bottom.set_ylabel("minutes per bar")
    bottom.set_xlabel("UTC")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(*sys.argv[1:])
