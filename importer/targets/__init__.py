"""API targets: each speaks one vendor's API behind the ``Target`` interface."""
