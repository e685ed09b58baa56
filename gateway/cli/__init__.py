"""The ``cellsafe`` command line."""
