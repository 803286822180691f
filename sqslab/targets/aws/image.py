"""The consumer image: build it from `consumer/`, push it to ECR, name its tag.

`push_image` is what `sqslab image push` and `scripts/build_and_push.sh` run:

1. the tag: the one given, else the git revision (`git rev-parse --short=12 HEAD`), with
   `-dirty-<epoch>` when `consumer/` has uncommitted changes (the repository's tags are
   immutable, and a dirty build must not take the commit's name);
2. the repository: created when missing (tags immutable, scan on push, AES-256, a
   lifecycle policy keeping the last images), so the first push needs no Terraform; a
   tag that is already there is not built or pushed again;
3. `docker build --platform linux/amd64` (Fargate runs X86_64 whatever this machine is);
4. `docker login` with the password from ECR's `GetAuthorizationToken`, handed to docker
   on stdin only: never on a command line, in a log line or in an error message;
5. `docker push`.

The AWS target runs the image whose tag it is given (`--image-tag`), by default the same
git revision, and refuses to start when that tag is not in ECR.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqslab.contracts import ECR_REPOSITORY, Exit

__all__ = [
    "DEFAULT_REPOSITORY",
    "ImageError",
    "PushResult",
    "consumer_context",
    "default_tag",
    "git_revision",
    "image_exists",
    "push_image",
]

DEFAULT_REPOSITORY = ECR_REPOSITORY
DEFAULT_REGION = "us-west-1"
#: Fargate's task definitions say X86_64 (terraform/modules/service).
PLATFORM = "linux/amd64"
#: Images the lifecycle policy of a repository created here keeps.
KEEP_IMAGES = 10

LineCallback = Callable[[str], None]

_SOURCE_ROOT = Path(__file__).resolve().parents[3]


class ImageError(Exception):
    """Building, logging in or pushing failed; the message says which and why."""


@dataclass(frozen=True)
class PushResult:
    """What a push left in ECR: the image URI, its tag, and what was done."""

    uri: str
    tag: str
    repository_uri: str
    pushed: bool
    repository_created: bool

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-able data."""
        return dict(self.__dict__)


# -- names -----------------------------------------------------------------------------------


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_revision(root: Path | None = None) -> str | None:
    """The short git revision (12 hex digits) of the sqslab checkout (or ``root``), or None
    outside a git work tree. Both the push and the AWS target default to it."""
    for candidate in ([root] if root is not None else [_SOURCE_ROOT, Path.cwd()]):
        revision = _git(candidate, "rev-parse", "--short=12", "HEAD")
        if revision:
            return revision
    return None


def default_tag(context: Path, root: Path | None = None) -> str:
    """The git revision, plus ``-dirty-<epoch>`` when the build context has uncommitted
    changes. ImageError outside a git work tree (then pass a tag)."""
    base = root or context
    revision = git_revision(base)
    if revision is None:
        raise ImageError(f"{base} is not in a git work tree, so there is no revision to tag the image with; pass --tag TAG")
    status = _git(base, "status", "--porcelain", "--", str(context))
    return f"{revision}-dirty-{int(time.time())}" if status else revision


def consumer_context(explicit: Path | None = None) -> Path:
    """The docker build context: a directory with the consumer's Dockerfile.

    ``explicit``, else $SQSLAB_CONSUMER_DIR, else ``consumer/`` of the sqslab checkout,
    else ``./consumer``.
    """
    candidates = [explicit] if explicit is not None else []
    if not candidates and os.environ.get("SQSLAB_CONSUMER_DIR"):
        candidates.append(Path(os.environ["SQSLAB_CONSUMER_DIR"]).expanduser())
    if not candidates:
        candidates += [_SOURCE_ROOT / "consumer", Path.cwd() / "consumer"]
    for candidate in candidates:
        if (candidate / "Dockerfile").is_file():
            return candidate.resolve()
    raise ImageError(
        "no consumer build context (a directory with the Dockerfile and consume.py) in "
        + ", ".join(map(str, candidates))
        + "; run from a sqslab checkout or set SQSLAB_CONSUMER_DIR"
    )


# -- ECR ---------------------------------------------------------------------------------------


def ecr_client(region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 ECR client with the user's credential chain (the endpoint for tests)."""
    import boto3

    return boto3.session.Session(region_name=region).client("ecr", endpoint_url=endpoint_url)


def _aws_error(exc: Exception, what: str) -> ImageError:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return ImageError(f"{what}: no AWS credentials found; set AWS_PROFILE or log in (aws sso login), see docs/aws.md")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return ImageError(f"{what}: {error.get('Code', 'error')}: {error.get('Message', exc)}")
    return ImageError(f"{what}: {exc}")


def image_exists(ecr: Any, repository: str, tag: str) -> bool:
    """True when ``repository`` holds ``tag``; False when either is missing."""
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return False
    except ecr.exceptions.RepositoryNotFoundException:
        return False
    return True


def ensure_repository(ecr: Any, repository: str) -> tuple[str, bool]:
    """The repository's URI, creating the repository when missing; (uri, created)."""
    try:
        found = ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]
        return found["repositoryUri"], False
    except ecr.exceptions.RepositoryNotFoundException:
        pass
    created = ecr.create_repository(
        repositoryName=repository,
        imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "AES256"},
    )["repository"]
    policy = {"rules": [{
        "rulePriority": 1,
        "description": f"Keep the last {KEEP_IMAGES} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
        "action": {"type": "expire"},
    }]}  # fmt: skip
    ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=json.dumps(policy))
    return created["repositoryUri"], True


def _login_secret(ecr: Any) -> tuple[str, str, str]:
    """(user, password, registry host) from GetAuthorizationToken."""
    data = ecr.get_authorization_token()["authorizationData"][0]
    user, _, password = base64.b64decode(data["authorizationToken"]).decode("utf-8").partition(":")
    registry = data["proxyEndpoint"].split("://", 1)[-1].rstrip("/")
    return user, password, registry


# -- docker ------------------------------------------------------------------------------------


def find_docker(explicit: str | None = None) -> str:
    """The docker executable: ``explicit``, $DOCKER, or ``docker`` on PATH."""
    name = explicit or os.environ.get("DOCKER") or "docker"
    found = shutil.which(name)
    if not found:
        raise ImageError(f"{name} was not found on PATH; install Docker (https://docs.docker.com/get-docker/) or set DOCKER")
    return found


def _docker(docker: str, args: Sequence[str], on_line: LineCallback, stdin: str | None = None, secret: str | None = None) -> None:
    """Run ``docker ARGS``, streaming its output to on_line; ImageError when it fails.

    ``stdin`` is written to docker's standard input (the password for login); ``secret``
    is blanked out of every line shown, in case a program echoes it.
    """
    def clean(line: str) -> str:
        return line.replace(secret, "***") if secret else line

    try:
        proc = subprocess.Popen(
            [docker, *args],
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
    except OSError as exc:
        raise ImageError(f"cannot run {docker}: {exc}") from exc
    if stdin is not None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except BrokenPipeError:
            pass
    tail: deque[str] = deque(maxlen=15)
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = clean(raw.rstrip("\n"))
        tail.append(line)
        on_line(line)
    code = proc.wait()
    if code != 0:
        detail = "\n".join("    " + line for line in tail if line.strip())
        hint = "; is the Docker daemon running?" if args[0] == "build" else ""
        raise ImageError(f"docker {args[0]} failed (exit {code}){hint}" + (f"\n  last lines:\n{detail}" if detail else ""))


# -- the push ----------------------------------------------------------------------------------


def push_image(
    tag: str | None = None,
    region: str | None = None,
    repository: str = DEFAULT_REPOSITORY,
    context: Path | None = None,
    docker: str | None = None,
    endpoint_url: str | None = None,
    on_line: LineCallback | None = None,
) -> PushResult:
    """Build the consumer image and push it to ECR; see the module docstring for the steps.

    ``region`` defaults to $AWS_REGION, $AWS_DEFAULT_REGION, then us-west-1. Output of
    docker and the steps go to ``on_line``; the password never does.
    """
    show = on_line or (lambda line: None)
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    build_context = consumer_context(context)
    tag = tag or default_tag(build_context)
    ecr = ecr_client(region, endpoint_url)
    try:
        repository_uri, created = ensure_repository(ecr, repository)
        uri = f"{repository_uri}:{tag}"
        if image_exists(ecr, repository, tag):
            show(f"{uri} is already in ECR; not pushing it again (tags are immutable)")
            return PushResult(uri, tag, repository_uri, pushed=False, repository_created=created)
        user, password, registry = _login_secret(ecr)
    except ImageError:
        raise
    except Exception as exc:
        raise _aws_error(exc, f"ECR in {region}") from exc
    if created:
        show(f"created the ECR repository {repository_uri}")
    executable = find_docker(docker)
    show(f"building {uri} from {build_context}")
    _docker(executable, ["build", "--platform", PLATFORM, "-t", uri, str(build_context)], show)
    show(f"logging in to {registry}")
    _docker(executable, ["login", "--username", user, "--password-stdin", registry], show, stdin=password, secret=password)
    show(f"pushing {uri}")
    _docker(executable, ["push", uri], show)
    return PushResult(uri, tag, repository_uri, pushed=True, repository_created=created)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m sqslab.targets.aws.image push [--tag T] [--region R] [--repository NAME]`: what
    scripts/build_and_push.sh runs. The image URI goes to stdout, the rest to stderr."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sqslab.targets.aws.image", description="Build the consumer image and push it to ECR.")
    sub = parser.add_subparsers(dest="command", required=True)
    push = sub.add_parser("push", help="build and push the consumer image")
    push.add_argument("--tag", help="image tag (default: the git revision)")
    push.add_argument("--region", help="AWS region (default: $AWS_REGION or us-west-1)")
    push.add_argument("--repository", default=DEFAULT_REPOSITORY, help=f"ECR repository (default: {DEFAULT_REPOSITORY})")
    push.add_argument("--context", type=Path, help="docker build context (default: the checkout's consumer/)")
    args = parser.parse_args(argv)
    try:
        result = push_image(args.tag, args.region, args.repository, args.context, on_line=lambda line: print(line, file=sys.stderr))
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return Exit.ERROR
    print(f"image tag: {result.tag}  (sqslab run --target aws --image-tag {result.tag} ...)", file=sys.stderr)
    print(result.uri)
    return Exit.PASSED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
