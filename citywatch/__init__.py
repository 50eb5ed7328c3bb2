"""citywatch: real-time early warning for a city command centre.

The contract lives here: ``events`` (input records), ``alerts`` (signals and alerts),
``registry`` (reference data), ``settings``, ``keys`` (Redis layout), ``errors``, ``geo``.
These modules import nothing else of ours; only ``citywatch.cli`` imports everything.
"""

__version__ = "0.1.0"
