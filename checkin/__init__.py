"""checkin: post-operative recovery messages for spine-surgery patients."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("checkin")  # the one version source is pyproject.toml
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
