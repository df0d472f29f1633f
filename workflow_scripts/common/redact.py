"""Secrets out of everything a step prints, logs, raises or saves: the one place that knows what a secret looks like.

Which environment variables hold secrets is config: every key ending in ``_env`` names one
(``citations.semantic_scholar.api_key_env: S2_API_KEY``, ...). Snakemake exports those *names* to every step as
``SCITASTE_SECRET_VARS`` (rules/common.smk); a step run by hand falls back to the names of the schema's defaults.
The values are looked up in the environment when redacting, so only names ever travel.

Two kinds of redaction: the values of those variables wherever they appear (also URL- and JSON-escaped), and
credential-shaped text whatever its value (``api_key=...``, ``x-api-key: ...``, ``Authorization: ...``,
``https://user:pass@host``), which catches keys that no variable names.
"""

from __future__ import annotations

import functools
import json
import os
import re
from typing import Any, Mapping
from urllib.parse import quote, quote_plus

SECRET_VARS_ENV = "SCITASTE_SECRET_VARS"
# read by libraries themselves (W&B), so no config key names it
ALWAYS_SECRET_VARS = ("WANDB_API_KEY",)
MASK = "***"
# shorter values ("1", "true", a user name like "bob") would shred ordinary log text
MIN_SECRET_LENGTH = 6


def _masked_keeping_quotes(value: str) -> str:
    quote_char = value[0] if value[0] in "\"'" else ""
    return f"{quote_char}{MASK}{quote_char}"


_CREDENTIAL_NAMES = r"api[_-]?key|apikey|access[_-]?token|auth[_-]?token|client[_-]?secret|password|passwd"
_PATTERNS = [
    # query strings, form bodies and `name=value` anywhere: api_key=..., access_token=...
    (re.compile(rf"(?i)\b((?:{_CREDENTIAL_NAMES})=)[^&\s#\"'<>]+"), rf"\1{MASK}"),
    # short names only inside a query string, where they cannot be an ordinary word: ?key=..., &token=...
    (re.compile(r"(?i)([?&;](?:key|token|secret|signature|sig)=)[^&\s#\"'<>]+"), rf"\1{MASK}"),
    # headers and their echoes as JSON or Python reprs: x-api-key: ..., "Authorization": "Bearer ...", 'cookie': '...'
    # (a quoted value keeps its quotes, so a JSON echo stays readable)
    (
        re.compile(
            rf"(?i)(\b(?:x-api-key|x-auth-token|proxy-authorization|authorization|set-cookie|cookie|{_CREDENTIAL_NAMES})"
            r"[\"']?\s*:\s*)(\"[^\"\r\n]*\"|'[^'\r\n]*'|(?!(?:null|None)\b)[^\s\"',;}][^\r\n\"',;}]*)"
        ),
        lambda m: m.group(1) + _masked_keeping_quotes(m.group(2)),
    ),
    # basic auth in a URL: https://user:pass@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@:]+:[^\s/@]*@"), rf"\1{MASK}@"),
]


def secret_var_names(config: Mapping[str, Any]) -> list[str]:
    """The environment variables a config says hold secrets: the value of every key ending in ``_env``, at any depth."""
    names = set(ALWAYS_SECRET_VARS)

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if str(key).endswith("_env") and isinstance(value, str) and value:
                    names.add(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(config)
    return sorted(names)


@functools.cache
def _default_var_names() -> tuple[str, ...]:
    from workflow_scripts.common.config import schema_defaults  # jsonschema only when a step runs outside Snakemake

    return tuple(secret_var_names(schema_defaults()))


def active_var_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The names Snakemake exported, else the schema defaults' names."""
    exported = [n.strip() for n in environ.get(SECRET_VARS_ENV, "").split(",") if n.strip()]
    return sorted(set(exported) | set(ALWAYS_SECRET_VARS)) if exported else list(_default_var_names())


def secret_values(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every form in which a secret value may appear in text, longest first (so no longer form is half-replaced)."""
    forms = set()
    for name in active_var_names(environ):
        value = environ.get(name) or ""
        if len(value) >= MIN_SECRET_LENGTH:
            forms.update({value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]})
    return sorted(forms, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """``text`` with every secret value and every credential-shaped fragment replaced by ``***``."""
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_bytes(data: bytes, environ: Mapping[str, str] = os.environ) -> bytes:
    """``data`` with the secret values replaced, and only those: a saved response must stay what the source sent.

    Returns ``data`` itself when it holds no secret, so a caller can tell with ``is``.
    """
    clean = data
    for value in secret_values(environ):
        if value.encode("utf-8") in clean:
            clean = clean.replace(value.encode("utf-8"), MASK.encode())
    return clean


def excerpt(text: str, limit: int = 200) -> str:
    """A redacted one-line start of a response body for an error message (redacted first: a cut secret stays hidden)."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
