"""``python -m market_data_pipeline.cli``: the same as the ``mdp`` command."""

from .entry import main

main()
