"""The ``kmsnap probe`` command: what the account's API answers, as shapes a bug report can
carry (``kmsnap.sources.probe``): statuses, keys, counts, field names and JSON types."""

from __future__ import annotations

from kmsnap.cli._common import emit
from kmsnap.cli.environment import current
from kmsnap.cli.pull import (
    ApiOption,
    CredentialsFileOption,
    MaxRpmOption,
    PageSizeOption,
    SourceOption,
    TimeoutOption,
    TokenFileOption,
)
from kmsnap.cli.typerapp import app


@app.command()
def probe(
    api: ApiOption = None,
    source: SourceOption = None,
    token_file: TokenFileOption = None,
    credentials_file: CredentialsFileOption = None,
    page_size: PageSizeOption = None,
    max_rpm: MaxRpmOption = None,
    timeout: TimeoutOption = None,
) -> None:
    """Show what the API answers, without a single value: paste it into a bug report.

    Requests the first page of each catalog endpoint (v3: /products and the first
    product's reports, events and properties; Core: the root, the collections it links
    and those of the first account and product), within the rate limit, and prints per
    endpoint the status, the top-level keys, the record count and each field's name and
    JSON type. Never a value, an entity's name or the credentials. Exit 1 when an
    endpoint failed (its line says how).

    Example:

    \b
        export KISSMETRICS_API_KEY=...
        kmsnap probe --source v3 > probe.txt
    """
    from kmsnap.cli.pull import live_options
    from kmsnap.config import load_config, resolve_settings
    from kmsnap.errors import ApiError
    from kmsnap.sources.probe import probe as run_probe
    from kmsnap.sources.probe import render_probes
    from kmsnap.sources.v3 import V3PullOptions

    env = current()
    config = load_config(cwd=env.cwd)
    settings = resolve_settings(config, {
        "api": api, "source": source, "page_size": page_size, "max_rpm": max_rpm,
        "timeout": timeout,
    }, environ=env.environ)
    options = live_options(settings, config, token_file=token_file,
                           credentials_file=credentials_file)
    options.deadline = 600.0  # a handful of requests: ten minutes covers any pacing
    probes = run_probe(options)
    name = "v3" if isinstance(options, V3PullOptions) else "core"
    emit(render_probes(probes, source=name))
    failed = [p for p in probes if not p.ok]
    if any(p.status == 401 for p in failed):
        check = ("KISSMETRICS_USERNAME and KISSMETRICS_PASSWORD, or KISSMETRICS_API_KEY, or "
                 "--credentials-file" if name == "v3" else "KISSMETRICS_TOKEN or --token-file")
        raise ApiError(f"{options.api}: HTTP 401: the credentials were refused; check {check}")
    if failed:
        raise ApiError(f"{len(failed)} of {len(probes)} endpoints failed at {options.api} "
                       "(see the lines above)")
