"""Online detectors: pure state objects, no I/O, no clocks, no bytewax (see models/base.py)."""
