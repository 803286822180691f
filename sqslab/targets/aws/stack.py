"""The AWS target's stack: the project's Terraform applied for one run, kept or destroyed.

Every run gets a stack of its own (the scenario's name plus 4 hex digits), so a kept
stack never collides with the next run of the same scenario. The ECR repository is not
part of a run's stack: `sqslab image push` makes it, and every run uses it
(`ecr_create_repository = false`). `sqslab destroy` removes a kept stack later, from the
state left in RUN_DIR/terraform.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqslab.targets import Log, TargetError

#: Written next to the Terraform state: region, endpoint and the task definition
#: revisions sqslab registered (Terraform does not know them), for `sqslab destroy`.
STATE_FILE = "sqslab_aws.json"
_PLAN = re.compile(r"Plan: (\d+) to add, (\d+) to change, (\d+) to destroy")
_DONE = re.compile(r"^(?P<address>\S+): (?P<what>Creation|Destruction|Modifications) complete after")


def stack_tfvars(scenario: Any, image_tag: str, name: str | None = None, package: Any = None) -> tuple[dict[str, Any], str]:
    """The Terraform variables and tfvars text of one AWS run of this scenario (what
    `sqslab plan --target aws` shows): a stack name of its own, and (ECS) the shared ECR
    repository that `sqslab image push` made, or (Lambda) the function's package."""
    from sqslab.targets.aws import terraform

    variables = terraform.stack_variables(scenario, image_tag, name=name or stack_name(scenario.stack_name), package=package)
    if scenario.consumer.compute != "lambda":
        variables["ecr_create_repository"] = False  # the repository exists already
    return variables, terraform.render_tfvars(variables)


def stack_name(base: str) -> str:
    """The scenario's stack name plus 4 hex digits: one stack per run (at most 37 characters)."""
    return f"{base[:32].rstrip('-')}-{uuid.uuid4().hex[:4]}"


class TerraformProgress:
    """Every terraform line to the log as `{"event": "terraform", ...}`; resources done so
    far as `terraform_progress` events; the plan's size as a notice."""

    def __init__(self, emit: Log) -> None:
        self._emit = emit

    def for_command(self, command: str) -> Callable[[str], None]:
        """The line callback of one terraform command (init, apply, destroy)."""
        state: dict[str, Any] = {"total": None, "done": 0}

        def on_line(line: str) -> None:
            self._emit({"event": "terraform", "command": command, "line": line})
            plan = _PLAN.search(line)
            if plan:
                add, change, destroy = (int(n) for n in plan.groups())
                state["total"] = destroy if command == "destroy" else add + change
                self._emit({"event": "notice", "message": f"terraform {command}: {line.strip()}"})
                return
            done = _DONE.match(line.strip())
            if done:
                state["done"] += 1
                self._emit({"event": "terraform_progress", "command": command, "done": state["done"],
                            "total": state["total"], "resource": done.group("address")})

        return on_line


def save_state(state_dir: Path, **fields: Any) -> None:
    """Keep what `sqslab destroy` needs beyond Terraform's state (merged into the file)."""
    path = state_dir / STATE_FILE
    data = read_json(path)
    registered = set(data.get("task_definitions", [])) | set(fields.pop("task_definitions", []))
    data.update(fields)
    data["task_definitions"] = sorted(registered)
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


# ---------------------------------------------------------------- destroy


def stack_has_resources(state_dir: Path) -> bool:
    """True when the Terraform state under ``state_dir`` still holds managed resources."""
    from sqslab.targets.aws.terraform import state_has_resources

    return state_has_resources(Path(state_dir) / "stack" / "terraform.tfstate")


def _recorded_endpoint(state_dir: Path) -> str | None:
    endpoint = read_json(Path(state_dir) / "target.json").get("endpoint_url")
    return endpoint if isinstance(endpoint, str) else None


def find_kept_run(runs_dir: Path) -> Path | None:
    """The latest run directory under ``runs_dir`` (sweeps included) whose AWS stack
    still has resources, by the time its state was written; None when there is none."""
    found = []
    for pattern in ("*/terraform", "*/*/terraform"):
        for state_dir in Path(runs_dir).glob(pattern):
            if stack_has_resources(state_dir) and _recorded_endpoint(state_dir) is None:
                found.append((state_dir.joinpath("stack", "terraform.tfstate").stat().st_mtime, state_dir.parent))
    return max(found)[1] if found else None


def destroy_run(run_dir: Path | str, on_line: Callable[[str], None] | None = None, endpoint_url: str | None = None) -> bool:
    """Destroy the stack a run kept, from RUN_DIR/terraform. Idempotent: False when there
    is nothing to destroy. TargetError when terraform fails (run it again to finish)."""
    from sqslab.targets.aws import terraform

    run_dir = Path(run_dir)
    state_dir = run_dir / "terraform"
    if not stack_has_resources(state_dir):
        return False
    recorded = _recorded_endpoint(state_dir)
    if recorded and not endpoint_url:
        raise TargetError(f"{run_dir} holds a stack applied to the local emulator at {recorded}, not to AWS: "
                          "nothing billable was created, and that emulator is gone with its run")
    show = on_line or (lambda line: None)

    def emit(event: dict[str, Any]) -> None:
        if event.get("event") == "target_error":
            show(f"warning: {event['call']}: {event['error']}")

    try:
        tf = terraform.Terraform(state_dir, endpoint_url=endpoint_url)
    except terraform.TerraformError as exc:
        raise TargetError(str(exc)) from exc
    with tf:
        return destroy(tf, state_dir, run_dir, show, emit)


def destroy(tf: Any, state_dir: Path | None, run_dir: Path | None, on_line: Callable[[str], None], emit: Log) -> bool:
    """terraform destroy, then deregister the task definition revisions sqslab added."""
    from sqslab.targets.aws import terraform

    try:
        destroyed = tf.destroy(on_line=on_line)
    except terraform.TerraformError as exc:
        raise TargetError(failed_message("destroy", exc, run_dir)) from exc
    if state_dir is not None:
        _deregister(Path(state_dir), emit)
    emit({"event": "stack_destroyed" if destroyed else "stack_empty"})
    return bool(destroyed)


def _deregister(state_dir: Path, emit: Log) -> None:
    """Task definition revisions registered by set_consumer: Terraform never knew them."""
    path = state_dir / STATE_FILE
    data = read_json(path)
    arns = data.get("task_definitions") or []
    if not arns:
        return
    ecs = aws_client("ecs", data.get("region") or "us-west-1", data.get("endpoint_url"))
    left = []
    for arn in arns:
        try:
            ecs.deregister_task_definition(taskDefinition=arn)
        except Exception as exc:  # noqa: BLE001 - harmless leftovers: an inactive revision costs nothing
            if "INACTIVE" not in str(exc):
                left.append(arn)
                emit({"event": "target_error", "call": "deregister_task_definition", "error": str(exc)})
    data["task_definitions"] = left
    path.write_text(json.dumps(data, indent=2) + "\n")


def aws_client(service: str, region: str, endpoint_url: str | None = None, retries: int = 8) -> Any:
    """A boto3 client with your credential chain, or the dummy credentials for an emulator."""
    import boto3
    from botocore.config import Config

    from sqslab.credentials import emulator_session

    session = emulator_session(region) if endpoint_url else boto3.session.Session(region_name=region)
    config = Config(retries={"max_attempts": retries, "mode": "standard"}, max_pool_connections=32)
    return session.client(service, endpoint_url=endpoint_url, config=config)


def failed_message(command: str, exc: Exception, run_dir: Path | None) -> str:
    """A failed apply or destroy in words, with what to do about what was created."""
    where = str(run_dir) if run_dir is not None else "RUN_DIR"
    text = str(exc)
    if command == "apply":
        after = ("What was created is destroyed as the run ends (unless --keep); "
                 f"if that fails too, run `sqslab destroy {where}` to clean up what was created.")
    else:
        after = f"Some resources may be left: run `sqslab destroy {where}` to clean up what was created."
    if not text.startswith(f"terraform {command} failed"):
        text = f"terraform {command} failed: {text}"
    return f"{text}\n{after}"


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or {} when it is missing or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}

def check_image(ecr: Any, repository: str, tag: str, region: str) -> None:
    """Refuse to apply for 3 minutes when the tasks could never pull their image."""
    from botocore.exceptions import BotoCoreError, ClientError

    push = f"`sqslab image push --region {region}`"
    try:
        ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.RepositoryNotFoundException:
        raise TargetError(f"there is no ECR repository {repository} in {region}: run {push} first (docs/aws.md)") from None
    except ecr.exceptions.ImageNotFoundException:
        raise TargetError(f"the consumer image {repository}:{tag} is not in ECR ({region}): run {push}, "
                          "then pass the tag it prints as --image-tag") from None
    except (ClientError, BotoCoreError) as exc:
        raise TargetError(f"cannot check the consumer image in ECR ({region}): {exc}; "
                          "are AWS credentials set (AWS_PROFILE, aws sso login)?") from exc
