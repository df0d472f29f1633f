"""Download one large file (e.g. the arXiv metadata dump from Kaggle), resumably, optionally extracting a zip member.

    python -m workflow_scripts.sources.fetch_file --url URL --out FILE [--zip-member NAME] \
        [--user-env KAGGLE_USERNAME --key-env KAGGLE_KEY]

Credentials are read from the named environment variables (HTTP basic auth) and never logged or written.
"""

from __future__ import annotations

import logging
import os
import shutil
import zipfile
from pathlib import Path

import httpx

from workflow_scripts.common.cli import parser, setup_logging
from workflow_scripts.common.io import atomic_path
from workflow_scripts.common.redact import redact
from workflow_scripts.sources.http import PoliteClient, RetryPolicy

log = logging.getLogger(__name__)


def fetch(url: str, out: Path, zip_member: str | None, auth: tuple[str, str] | None, policy: RetryPolicy) -> None:
    download_to = out.with_name(out.name + ".zip") if zip_member else out
    with PoliteClient(policy) as client:
        size = client.download(url, download_to, auth=httpx.BasicAuth(*auth) if auth else None)
    log.info("downloaded %s (%.1f MB)", download_to, size / 1e6)
    if zip_member:
        with zipfile.ZipFile(download_to) as zf:
            if zip_member not in zf.namelist():
                raise SystemExit(f"{download_to}: no member {zip_member!r}; members: {zf.namelist()[:20]}")
            with zf.open(zip_member) as src, atomic_path(out) as tmp, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 22)
        download_to.unlink()
        log.info("extracted %s", out)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--zip-member", help="the response is a zip: extract this member to --out")
    p.add_argument("--user-env", help="environment variable holding the basic-auth user name")
    p.add_argument("--key-env", help="environment variable holding the basic-auth key")
    p.add_argument("--min-interval-s", type=float, default=1.0)
    p.add_argument("--max-retries", type=int, default=8)
    p.add_argument("--backoff-base-s", type=float, default=2.0)
    p.add_argument("--backoff-max-s", type=float, default=300.0)
    p.add_argument("--timeout-s", type=float, default=600.0)
    args = p.parse_args(argv)
    setup_logging(args.verbose)
    auth = None
    if args.user_env or args.key_env:
        user, key = os.environ.get(args.user_env or ""), os.environ.get(args.key_env or "")
        if not (user and key):
            raise SystemExit(f"set the environment variables {args.user_env} and {args.key_env} (credentials for {redact(args.url)})")
        auth = (user, key)
    policy = RetryPolicy(args.min_interval_s, args.max_retries, args.backoff_base_s, args.backoff_max_s, args.timeout_s)
    fetch(args.url, args.out, args.zip_member, auth, policy)


if __name__ == "__main__":
    main()
