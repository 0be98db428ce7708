"""The application layer, the top floor: the ``segrt`` command line (``cli*.py``), the
applications it starts (``run``: segrt run and the API's run; ``fleet``: segrt batch's workers;
``zoo_build``: segrt zoo) and the shared CLI options. Everything below is imported from here;
nothing below imports this package (tests/test_layers.py)."""
