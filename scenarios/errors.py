"""Exceptions of the scenarios package."""


class ScenarioError(Exception):
    """A scenario file is malformed or names something that does not exist."""
