"""The one exception tree of citywatch, and the exit code of each branch.

::

    CitywatchError          exit 1 unless a branch says otherwise
     ├── ConfigError        exit 2: bad settings (a field, its value and what was expected)
     ├── SchemaError        exit 2: a record or message that does not fit its schema
     ├── InputError         exit 2: an input (file, argument) that cannot be used as given
     └── DependencyError    exit 1: a dependency unreachable or failing after a bounded retry
          └── StoreError    exit 1: Redis unreachable or answering unexpectedly

Bad *input* never raises out of a dataflow: the decoder turns it into a ``DeadLetter``.
These exceptions are for configuration errors, unusable inputs and failing dependencies;
the CLI prints ``citywatch <command>: error: <message>`` (one line) and exits with
``exit_code``.
"""

from __future__ import annotations

__all__ = [
    "CitywatchError",
    "ConfigError",
    "DependencyError",
    "InputError",
    "SchemaError",
    "StoreError",
]


class CitywatchError(Exception):
    """Root of every error citywatch raises on purpose."""

    #: The CLI's exit status for this error: 2 = bad usage or input, 1 = a failing dependency.
    exit_code: int = 1


class ConfigError(CitywatchError):
    """A setting is missing, malformed or out of range."""

    exit_code = 2


class SchemaError(CitywatchError):
    """A record or message does not fit its schema; the message names field and problem."""

    exit_code = 2


class InputError(CitywatchError):
    """An input file or argument cannot be used as given (missing, truncated, wrong format)."""

    exit_code = 2


class DependencyError(CitywatchError):
    """A service we depend on (Redis, an MQTT broker, a port) failed after a bounded retry."""


class StoreError(DependencyError):
    """Redis could not be reached or answered unexpectedly."""
