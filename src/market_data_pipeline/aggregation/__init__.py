"""The bar engine: resolutions, windows and calendars, aggregation, resampling, lateness.

``mdp.bars(frame, ...)`` (``api.bars``) is its notebook entry; ``mdp run`` feeds it through
``runtime``.
"""
