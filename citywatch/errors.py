"""The one exception tree of citywatch.

::

    CitywatchError
     ├── ConfigError        bad settings: a field, its value and what was expected
     ├── SchemaError        an input record or message that does not fit its schema
     ├── StoreError         Redis unreachable or answering unexpectedly after retries
     └── NotBuiltError      a CLI command whose issue has not landed yet

Bad *input* never raises out of a dataflow: the decoder turns it into a ``DeadLetter``.
These exceptions are for programming and configuration errors, and for callers that
want to raise on a single bad record (``decode_or_raise``).
"""

from __future__ import annotations

__all__ = ["CitywatchError", "ConfigError", "NotBuiltError", "SchemaError", "StoreError"]


class CitywatchError(Exception):
    """Root of every error citywatch raises on purpose."""


class ConfigError(CitywatchError):
    """A setting is missing, malformed or out of range."""


class SchemaError(CitywatchError):
    """A record or message does not fit its schema; the message names field and problem."""


class StoreError(CitywatchError):
    """Redis could not be reached or answered unexpectedly."""


class NotBuiltError(CitywatchError):
    """A command exists in the CLI but its implementation has not landed yet."""
