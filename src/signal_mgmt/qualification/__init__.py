"""Qualification: pure rules only (facts in, decision and reason codes out; no session,
no clock, no I/O). The services that gather the facts and store the decisions live in
``entry/`` and ``exit/``.

Entry: ``entry_rules`` (rules, ``qualify_entry``), ``levels``, ``sizing`` (incl. order
slicing), ``reasons``. Exit Stage B: ``exit_rules``.
"""

from signal_mgmt.qualification.entry_rules import (
    DEFAULT_ENTRY_RULES,
    EntryDecision,
    EntryFacts,
    EntryRule,
    qualify_entry,
)
from signal_mgmt.qualification.reasons import EntryReason

__all__ = [
    "DEFAULT_ENTRY_RULES",
    "EntryDecision",
    "EntryFacts",
    "EntryReason",
    "EntryRule",
    "qualify_entry",
]
