"""``python -m market_data_contracts``: the ``mdp-contracts`` command."""

from __future__ import annotations

from .cli.app import main

main()
