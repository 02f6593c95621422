"""`allmysms-mock healthcheck`: exit 0 when a running mock answers `/health` (Docker).

The address comes from the same configuration `serve` reads (contract 3: the `--config` file or
`$ALLMYSMS_MOCK_CONFIG`, then the `ALLMYSMS_MOCK_*` variables), so a moved HTTP port is followed;
`--url` overrides it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

# A server listening on every address is asked on the loopback one of the same family.
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "healthcheck",
        help="exit 0 if a running mock answers GET /health",
        description="Query GET /health of a running mock at the HTTP address its configuration "
        "gives (the same --config file, $ALLMYSMS_MOCK_CONFIG and ALLMYSMS_MOCK_* variables as "
        "serve). Exit 0 healthy, 1 otherwise, 2 on a bad configuration.",
    )
    p.add_argument("--config", type=Path, help="TOML configuration file (or $ALLMYSMS_MOCK_CONFIG)")
    p.add_argument("--url", help="health URL to query instead of the configured address")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer")
    p.set_defaults(run=run)


def configured_http(config_file: Path | None, environ: dict[str, str]) -> tuple[str, str]:
    """`(http://<host>:<http_port>, api_token)` from the configuration `serve` would load (also
    used by `watch`); raises ConfigError (a bad file or value, or a port chosen at start that
    cannot be known here)."""
    from mockserver.config import ENV_CONFIG_FILE, ConfigError, load_config

    path = config_file or environ.get(ENV_CONFIG_FILE) or None
    server = load_config(path and Path(path), env=environ).server
    if server.http_port == 0:
        raise ConfigError(
            "server.http_port is 0 (a free port picked at start): pass --url with the real one"
        )
    host = _WILDCARDS.get(server.host, server.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.http_port}", server.api_token


def health_url(config_file: Path | None, environ: dict[str, str]) -> str:
    """`http://<host>:<http_port>/health` from the configuration `serve` would load; raises
    ConfigError (a bad file or value, or a port chosen at start that cannot be known here)."""
    return configured_http(config_file, environ)[0] + "/health"


def run(args: argparse.Namespace) -> int:
    from mockserver.config import ConfigError

    url = args.url
    if url is None:
        try:
            url = health_url(args.config, dict(os.environ))
        except ConfigError as exc:
            print(f"healthcheck: {exc}", file=sys.stderr)
            return 2
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            body = json.loads(resp.read().decode("utf-8"))
    except (OSError, ValueError, urllib.error.URLError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not isinstance(body, dict) or body.get("status") != "ok":
        print(f"unhealthy: {url}: {body}", file=sys.stderr)
        return 1
    print("ok")
    return 0
