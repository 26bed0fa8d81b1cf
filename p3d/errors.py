"""Errors raised for bad user input.

Every problem with a file or an argument a user supplied is raised as :class:`InputError`, whose
message names the file and what is wrong. The CLI turns it into a one-line message and exit code 2,
never a traceback.
"""
from __future__ import annotations


class InputError(ValueError):
    """Bad user input (a file, a folder or an argument); the message says which and why."""


EXIT_BAD_INPUT = 2
