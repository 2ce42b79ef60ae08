"""What a log line or an error message may show of a value that can hold a secret."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

HIDDEN = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SECRET_OPTION = re.compile(r"pass|pwd|token|secret|key|auth|cred", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its credentials shown as ``***``: what logs and errors print instead.

    Everything before the last ``@`` ahead of the query is credentials (a password may hold
    ``@``, ``,`` or ``/``; a NATS token has no ``:``); a user name before ``:`` stays. With
    several hosts (``nats://u:p@h1,u:p@h2``) the hosts before the last one are hidden too.
    Query options named like a secret (redis-py's ``?password=``, ``?token=``) are hidden.
    A value with an ``@`` but no ``://`` (``amqp//u:p@h``: credentials that cannot be
    delimited) shows only its leading scheme-like word.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return unparseable(url) if "@" in url else url
    address = re.split(r"[?#]", rest, maxsplit=1)[0]
    remainder = rest[len(address) :]
    credentials, at, host = address.rpartition("@")
    if at:
        user, colon, _ = credentials.partition(":")
        address = f"{user}:{HIDDEN}@{host}" if colon else f"{HIDDEN}@{host}"
    if remainder.startswith("?"):
        query, hash_mark, fragment = remainder[1:].partition("#")
        remainder = f"?{_redact_query(query)}{hash_mark}{fragment}"
    return f"{scheme}://{address}{remainder}"


def unparseable(value: str) -> str:
    """What an error may echo of a value we could not parse: its leading word, no more."""
    word = _SCHEME.match(value)
    return f"{word.group()}..." if word else "..."


def _redact_query(query: str) -> str:
    options = parse_qsl(query, keep_blank_values=True)
    if not any(_SECRET_OPTION.search(name) for name, _ in options):
        return query
    shown = [(name, HIDDEN if _SECRET_OPTION.search(name) else value) for name, value in options]
    return urlencode(shown, safe="*")
