"""Dummy credentials for everything that talks to an emulator, never the user's own.

Local runs, the emulator child, Terraform applied to the emulator and the consumer
processes all get these, from an environment scrubbed of anything that could point
them at a real AWS identity or endpoint (a profile, a session, a role, an endpoint).
Standard library only: the emulator child imports it before moto.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
DEFAULT_REGION = "us-west-1"

#: Credentials and region every emulator client may use.
DUMMY_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_REGION": DEFAULT_REGION,
    "AWS_DEFAULT_REGION": DEFAULT_REGION,
}

#: Variables that could point a child at the user's real AWS identity or endpoint.
SCRUBBED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_ENDPOINT_URL",
)


def emulator_env(base: Mapping[str, str] | None = None, region: str | None = None) -> dict[str, str]:
    """An environment with the dummy credentials and no real AWS identity: no profile,
    no config or credentials file, no instance metadata, no endpoint of its own."""
    env = dict(os.environ if base is None else base)
    for key in [k for k in env if k in SCRUBBED or k.startswith("AWS_ENDPOINT_URL_")]:
        del env[key]
    env.update(DUMMY_ENV)
    if region:
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def session_kwargs(region: str | None = None) -> dict[str, str]:
    """boto3 Session arguments with the dummy credentials."""
    return {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET_ACCESS_KEY, "region_name": region or DEFAULT_REGION}


def emulator_session(region: str | None = None) -> Any:
    """A boto3 Session with the dummy credentials that reads nothing of the user's AWS
    set-up: no profile (an AWS_PROFILE naming a profile that does not exist would fail
    every call), no config or credentials file."""
    import boto3
    import botocore.session

    ignored = (None, None, None, None)  # (config name, environment variables, default, conversion)
    core = botocore.session.Session(session_vars={
        "profile": ignored,
        "config_file": (None, None, os.devnull, None),
        "credentials_file": (None, None, os.devnull, None),
    })
    return boto3.session.Session(botocore_session=core, **session_kwargs(region))
