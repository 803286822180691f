"""`sqslab image push` (sqslab.targets.aws.image) with no Docker daemon: a fake `docker` on PATH records
each call's argv and stdin, and ECR is moto (in-process, or the emulator for the script)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sqslab.targets.aws import image
from sqslab.targets.aws.image import ImageError, push_image

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-west-1"
ACCOUNT = "123456789012"
REGISTRY = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` that appends {"argv", "stdin"} to calls.jsonl and exits 0 (or $FAKE_DOCKER_FAIL
    for that subcommand, printing its stdin back, as a careless program might)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.jsonl"
    script = bin_dir / "docker"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
        with open({str(log)!r}, "a") as out:
            out.write(json.dumps({{"argv": sys.argv[1:], "stdin": stdin}}) + "\\n")
        print("fake docker " + sys.argv[1])
        if os.environ.get("FAKE_DOCKER_FAIL") == sys.argv[1]:
            print("error: rejected " + stdin)
            sys.exit(1)
    """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("DOCKER", raising=False)
    return log


def calls(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def ecr(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import boto3
    from moto import mock_aws

    for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.client("ecr", region_name=REGION)


def _password(ecr: Any) -> str:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().partition(":")[2]


def test_push_builds_logs_in_through_stdin_and_pushes(fake_docker: Path, ecr: Any) -> None:
    lines: list[str] = []
    context = ROOT / "consumer"
    result = push_image(tag="abc123def456", region=REGION, on_line=lines.append)

    uri = f"{REGISTRY}/sqs-demo/consumer:abc123def456"
    assert (result.uri, result.tag, result.pushed, result.repository_created) == (uri, "abc123def456", True, True)
    made = calls(fake_docker)
    assert [c["argv"] for c in made] == [
        ["build", "--platform", "linux/amd64", "-t", uri, str(context)],
        ["login", "--username", "AWS", "--password-stdin", REGISTRY],
        ["push", uri],
    ]
    password = _password(ecr)
    assert [c["stdin"] for c in made] == ["", password, ""], "the password goes to docker login's stdin, only"
    assert not any(password in arg for c in made for arg in c["argv"])
    assert not any(password in line for line in lines) and "fake docker push" in lines
    repo = ecr.describe_repositories(repositoryNames=["sqs-demo/consumer"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"] is True
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName="sqs-demo/consumer")["lifecyclePolicyText"])
    assert policy["rules"][0]["selection"]["countNumber"] == image.KEEP_IMAGES


def test_a_tag_already_in_ecr_is_not_built_or_pushed_again(fake_docker: Path, ecr: Any) -> None:
    ecr.create_repository(repositoryName="sqs-demo/consumer")
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": "sha256:" + "0" * 64},
                "layers": []}  # fmt: skip
    ecr.put_image(repositoryName="sqs-demo/consumer", imageManifest=json.dumps(manifest), imageTag="v1")
    lines: list[str] = []
    result = push_image(tag="v1", region=REGION, on_line=lines.append)
    assert (result.pushed, result.repository_created) == (False, False)
    assert calls(fake_docker) == []
    assert "already in ECR" in lines[0]


def test_a_failed_login_never_shows_the_password(fake_docker: Path, ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "login")
    lines: list[str] = []
    with pytest.raises(ImageError) as err:
        push_image(tag="v2", region=REGION, on_line=lines.append)
    password = _password(ecr)
    assert str(err.value).startswith("docker login failed (exit 1)")
    assert "error: rejected ***" in str(err.value), "docker echoed the password: blanked out"
    assert password not in str(err.value) and not any(password in line for line in lines)
    assert [c["argv"][0] for c in calls(fake_docker)] == ["build", "login"], "no push after a failed login"


def test_a_failed_build_asks_about_the_daemon(fake_docker: Path, ecr: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "build")
    with pytest.raises(ImageError, match=r"docker build failed \(exit 1\); is the Docker daemon running\?"):
        push_image(tag="v3", region=REGION)


def test_without_docker_it_says_so(ecr: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImageError, match="docker was not found on PATH"):
        push_image(tag="v4", region=REGION)


def test_without_credentials_it_says_so(fake_docker: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No credentials anywhere: botocore refuses to sign, so no request leaves the machine.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ImageError, match="no AWS credentials found"):
        push_image(tag="v5", region=REGION)
    assert calls(fake_docker) == []


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout.strip()


def test_the_default_tag_is_the_git_revision_and_dirty_builds_say_so(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    context = repo / "consumer"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "x")
    revision = _git(repo, "rev-parse", "--short=12", "HEAD")
    assert image.git_revision(repo) == revision and len(revision) == 12
    assert image.default_tag(context, repo) == revision
    (context / "Dockerfile").write_text("FROM scratch\nUSER 1\n")
    tag = image.default_tag(context, repo)
    assert tag.startswith(f"{revision}-dirty-") and tag.rsplit("-", 1)[1].isdigit()
    (repo / "elsewhere.txt").write_text("not the image\n")
    assert image.git_revision(tmp_path / "nowhere") is None
    with pytest.raises(ImageError, match="not in a git work tree"):
        image.default_tag(tmp_path / "nowhere")


def test_the_build_context_is_the_checkouts_consumer_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert image.consumer_context() == ROOT / "consumer"
    monkeypatch.setenv("SQSLAB_CONSUMER_DIR", str(tmp_path))
    with pytest.raises(ImageError, match="no consumer build context"):
        image.consumer_context()


def test_build_and_push_script_runs_the_same_code(fake_docker: Path, emulator: Any, tmp_path: Path) -> None:
    """scripts/build_and_push.sh against the emulator's ECR: the URI last on stdout."""
    env = {**os.environ, "AWS_ENDPOINT_URL": emulator.endpoint_url, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION, "ECR_REPOSITORY": "sqs-demo/script-test",
           "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_CONFIG_FILE": "/dev/null", "PYTHON": sys.executable}  # fmt: skip
    env.pop("AWS_PROFILE", None)
    proc = subprocess.run([str(ROOT / "scripts" / "build_and_push.sh"), "s1"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    uri = f"{REGISTRY}/sqs-demo/script-test:s1"
    assert proc.stdout.splitlines()[-1] == uri
    assert "--image-tag s1" in proc.stderr
    assert [c["argv"][0] for c in calls(fake_docker)] == ["build", "login", "push"]
