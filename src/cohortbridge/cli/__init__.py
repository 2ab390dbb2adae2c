"""The ``cohortbridge`` command line."""
