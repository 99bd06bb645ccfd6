"""``mdp serve``: the pipeline as an HTTP service (see docs/serve.md).

Light on import: ``chart`` (``mdp bars --plot``) needs neither FastAPI nor uvicorn; ``app``
and ``cli.serve`` import them (the ``serve`` extra).
"""
