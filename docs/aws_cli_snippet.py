"""For the lead: the `sqslab destroy` and `sqslab image push` commands, to paste into
sqslab/cli.py (above `if __name__ == "__main__":`), then delete this file.

Drop the import block below when pasting: cli.py has these names already. Importing
this file registers the commands on `main`, which is how they were tried out:

    python -c "import docs.aws_cli_snippet as s; s.main()" destroy --help

Also in sqslab/plugins.py:

    DEFAULT_PLUGINS = ("sqslab.actions", "sqslab.reporters", "sqslab.backends.local", "sqslab.backends.aws")

and, optionally, in cli.py's `_target_options`, pass `-q` to the AWS target so its
Terraform and ECS progress lines on stderr are hidden too:

    return {"keep": keep, "image_tag": image_tag, "quiet": quiet}   # and give it `quiet`
"""

# -- drop when pasting ------------------------------------------------------------------------
from __future__ import annotations

import json
from pathlib import Path

import click

from sqslab.cli import CONTEXT, InfraError, main

# -- paste from here ----------------------------------------------------------------------------


@main.command(context_settings=CONTEXT)
@click.argument("run_dir", required=False, metavar="[RUN_DIR]", type=click.Path(file_okay=False, path_type=Path))
@click.option("--runs-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"), show_default=True,
              help="Where to look for the latest kept stack when no RUN_DIR is given.")
@click.option("--quiet", "-q", is_flag=True, help="Do not show Terraform's output.")
def destroy(run_dir: Path | None, runs_dir: Path, quiet: bool) -> None:
    """Destroy the AWS stack a run kept (`sqslab run --target aws --keep`), or one whose
    teardown failed.

    RUN_DIR defaults to the latest run under --runs-dir whose stack still has resources.
    Running it again is safe: with nothing left it says so and exits 0. Exit 3 when
    Terraform fails; run it again to finish. The ECR repository (`sqslab image push`)
    is shared by every run and is left alone.
    """
    from sqslab.backends import TargetError
    from sqslab.backends.aws import destroy_run, find_kept_run

    if run_dir is None:
        run_dir = find_kept_run(runs_dir)
        if run_dir is None:
            click.echo(f"nothing to destroy: no run under {runs_dir} has an AWS stack left")
            return
    elif not run_dir.is_dir():
        raise click.UsageError(f"{run_dir}: no such run directory")
    show = (lambda line: None) if quiet else (lambda line: click.echo(line, err=True))
    try:
        destroyed = destroy_run(run_dir, on_line=show)
    except TargetError as exc:
        raise InfraError(str(exc)) from None
    click.echo(f"destroyed the stack of {run_dir}" if destroyed else f"nothing to destroy in {run_dir}")


@main.group(context_settings=CONTEXT)
def image() -> None:
    """The consumer's container image in ECR, for `sqslab run --target aws`."""


@image.command(name="push", context_settings=CONTEXT)
@click.option("--tag", help="Image tag (default: the git revision; -dirty-<time> added when consumer/ has uncommitted changes).")
@click.option("--region", help="AWS region (default: $AWS_REGION, else us-west-1); use the scenario's infra.region.")
@click.option("--repository", default="sqs-demo/consumer", show_default=True, help="ECR repository; created when missing.")
@click.option("--context", "build_context", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Docker build context (default: consumer/ of the sqslab checkout).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def image_push(tag: str | None, region: str | None, repository: str, build_context: Path | None, as_json: bool) -> None:
    """Build the consumer image and push it to ECR; print its URI.

    Runs `docker build --platform linux/amd64`, logs docker in with a token from ECR
    (the password goes to docker on stdin, never on a command line) and pushes. A tag
    already in ECR is not pushed again (the repository's tags are immutable). Needs
    Docker and AWS credentials allowed to push (docs/aws.md). Pass the tag it prints to
    `sqslab run --target aws --image-tag TAG` (the git revision is the default there too).
    """
    from sqslab.image import ImageError, push_image

    try:
        result = push_image(tag, region, repository, build_context, on_line=lambda line: click.echo(line, err=True))
    except ImageError as exc:
        raise InfraError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    click.echo(result.uri)
    click.echo(f"image tag: {result.tag}  (sqslab run --target aws --image-tag {result.tag} SCENARIO)", err=True)
