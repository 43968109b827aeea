"""What botocore would read from the environment, resolved without importing botocore.

The fast path (fastpath.py) must talk to exactly the server botocore would, in the same region,
trusting the same CAs, through the same proxy; where it cannot be sure it hands the request to boto3
(``fast_path_refusal`` says why, so the choice is never silent).  These rules are checked against
botocore itself in tests/storage/test_awsenv.py.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass


def env_endpoint() -> str | None:
    """``AWS_ENDPOINT_URL_S3`` before ``AWS_ENDPOINT_URL`` (botocore's service-specific override first)."""
    return (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "").strip() or None


def env_region() -> str | None:
    """The region both paths use, from the environment; None when only a config file could say.

    botocore reads ``AWS_DEFAULT_REGION`` (then the profile's ``region``) and ignores ``AWS_REGION``,
    which the other AWS SDKs and Lambda set.  We take ``AWS_DEFAULT_REGION`` first, as botocore does,
    then ``AWS_REGION``, and hand the result to the boto3 client too (s3.py), so the two paths can
    never sign for different regions.
    """
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return None


def config_file() -> str | None:
    """The AWS config file botocore would read, if it exists (it may set region, ca_bundle, endpoint_url)."""
    path = os.path.expanduser(os.environ.get("AWS_CONFIG_FILE", "").strip() or "~/.aws/config")
    return path if os.path.isfile(path) else None


def ca_bundle() -> str | None:
    """The CA file botocore verifies TLS with: ``AWS_CA_BUNDLE``, then ``REQUESTS_CA_BUNDLE``; else None (its default)."""
    for var in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var, "").strip()
        if value:
            return value
    return None


def default_ca_bundle() -> str | None:
    """botocore's default CA file when none is configured: certifi's, if installed (else its own copy)."""
    try:
        import certifi

        return certifi.where()
    except ImportError:
        return None


def proxy_for(url: str) -> str | None:
    """The proxy botocore would use for ``url`` (``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` matches)."""
    parts = urlsplit(url)
    try:
        if proxy_bypass(parts.netloc):
            return None
    except (TypeError, OSError):
        pass
    return getproxies().get(parts.scheme)


def fast_path_refusal(endpoint: str | None, enabled: bool = True) -> str | None:
    """Why the fast path must not serve this environment (a short reason), or None when it may.

    The fast path signs with env credentials for a custom endpoint; everything else botocore does
    (profiles, IRSA, AWS's own endpoints and redirects, proxies, config-file settings) stays with boto3.
    """
    if not enabled:  # SYNAPSE_S3_FAST_PATH=0, from the run's settings
        return "disabled (SYNAPSE_S3_FAST_PATH=0)"
    if not (os.environ.get("AWS_ACCESS_KEY_ID", "").strip() and os.environ.get("AWS_SECRET_ACCESS_KEY", "").strip()):
        return "no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the environment"
    if not endpoint:
        return "no custom endpoint (AWS_ENDPOINT_URL_S3/AWS_ENDPOINT_URL)"
    scheme = urlsplit(endpoint).scheme
    if scheme not in ("http", "https"):
        return f"endpoint scheme {scheme!r}"
    if env_region() is None and config_file() is not None:
        return "the region comes from the AWS config file"
    if proxy_for(endpoint):
        return "a proxy is configured for the endpoint (HTTPS_PROXY/HTTP_PROXY)"
    if scheme == "https" and ca_bundle() is None and os.environ.get("SSL_CERT_FILE", "").strip():
        return "SSL_CERT_FILE without AWS_CA_BUNDLE (botocore decides what it trusts)"
    return None
