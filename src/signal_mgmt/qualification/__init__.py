"""Qualification: pure rules (facts in, decision and reason codes out) and the services
that gather the facts and store the decisions.

Entry: ``entry_rules`` (rules, ``qualify_entry``), ``levels``, ``sizing``, ``reasons``,
``entry_service`` (``EntryQualificationService``). Exit Stage B: ``exit_rules``.
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
