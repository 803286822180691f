"""The project's Terraform stack, driven from Python: tfvars, init, apply, outputs, destroy.

A thin wrapper on the ``terraform`` CLI. It makes no AWS calls of its own: it renders
the tfvars from a scenario's context, finds the binary and (when there is one) a
filesystem mirror of the hashicorp/aws provider, works in a private copy of the stack
under a state directory, and turns failures into :class:`TerraformError` with the
command and the last lines Terraform printed.

Against a local emulator (``endpoint_url=...``) the shipped stack is not edited: the
provider is pointed at the emulator through the environment (``AWS_ENDPOINT_URL`` and
dummy credentials), and two generated files in the working copy let the main queue be
created as soon as its DLQ exists instead of after the DLQ's 25 s propagation wait.
docs/aws.md explains both.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import site
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqslab.targets.processes import die_with_parent

__all__ = [
    "PROVIDER",
    "Terraform",
    "TerraformError",
    "find_plugin_mirror",
    "find_terraform",
    "render_tfvars",
    "stack_dir",
    "stack_variables",
    "write_cli_config",
    "write_env_file",
]

#: CloudWatch Logs retention of the consumer log group, days.
LOG_RETENTION_DAYS = 7
#: The one provider the stack needs.
PROVIDER = "registry.terraform.io/hashicorp/aws"
#: Major version of hashicorp/aws the stack is written for (versions.tf: >= 5.60, < 6).
PROVIDER_MAJOR = 5

#: Places searched for a provider mirror when SQSLAB_TF_PLUGIN_MIRROR is unset.
MIRROR_CANDIDATES: tuple[str, ...] = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)

#: Files of the working copy that belong to Terraform, never to the stack.
_KEEP = {".terraform", ".terraform.lock.hcl", "terraform.tfstate", "terraform.tfstate.backup", "sqslab.tfvars"}

LineCallback = Callable[[str], None]


class TerraformError(RuntimeError):
    """A terraform command failed, or terraform or the stack could not be found.

    ``command`` is the subcommand (``init``, ``apply``, ...), ``returncode`` its exit
    code and ``stderr_tail`` the last lines it wrote to stderr.
    """

    def __init__(
        self,
        message: str,
        *,
        command: str | None = None,
        returncode: int | None = None,
        stderr_tail: Iterable[str] = (),
    ) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr_tail = list(stderr_tail)
        detail = "\n".join("    " + line for line in self.stderr_tail if line.strip())
        super().__init__(f"{message}\n  last lines of stderr:\n{detail}" if detail else message)


# -- tfvars -----------------------------------------------------------------------------


def hcl_value(value: Any) -> str:
    """Encode a str, int, float or bool as an HCL literal.

    JSON encoding gives HCL's quoting and escapes; ``${`` and ``%{`` are doubled on top,
    because HCL would read them as template interpolation even in a .tfvars file.
    """
    if isinstance(value, bool) or value is None or isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")
    raise TypeError(f"no HCL literal for {type(value).__name__} {value!r}")


def stack_variables(scenario: Any, image_tag: str, name: str | None = None, package: Any = None) -> dict[str, Any]:
    """The Terraform variables of the stack for a scenario: the infra settings that have a
    Terraform variable (sqslab.scenario.settings), then the consumer's: for ECS its
    environment and image (tag, or a consumer program's own image); for a Lambda function
    its settings, its mapping's and its package (sqslab.targets.aws.function_zip.Package;
    None: not built yet, as `plan` shows it)."""
    from dataclasses import asdict

    from sqslab.contracts import ECR_REPOSITORY
    from sqslab.scenario.settings import tfvar_values

    consumer = scenario.consumer
    common = {"name": name or scenario.stack_name, **tfvar_values(asdict(scenario.infra))}
    if consumer.compute == "lambda":
        return {**common, "log_retention_days": LOG_RETENTION_DAYS, **lambda_variables(consumer, package)}
    return {
        **common,
        "image_tag": image_tag,
        "log_retention_days": LOG_RETENTION_DAYS,
        "ecr_repository_name": ECR_REPOSITORY,
        # An image of the consumer's own ("": the project's consumer image), and its environment.
        "consumer_image": consumer.image or "",
        "consumer_env": consumer.environment(),
    }


def lambda_variables(consumer: Any, package: Any = None) -> dict[str, Any]:
    """A Lambda consumer's variables (sqslab.consumers.lambda_function.LambdaConsumer)."""
    return {
        "consumer_kind": "lambda",
        "lambda_package_path": str(package.path) if package is not None else "RUN_DIR/terraform/function.zip",
        "lambda_source_code_hash": package.source_code_hash if package is not None else "(the package's, built at provision)",
        "lambda_handler": consumer.handler,
        "lambda_runtime": consumer.runtime,
        "lambda_timeout": int(consumer.timeout),
        "lambda_memory": consumer.memory,
        "lambda_reserved_concurrency": -1 if consumer.reserved_concurrency is None else consumer.reserved_concurrency,
        "event_source_enabled": consumer.enabled,
        "event_source_batch_size": consumer.batch_size,
        "event_source_batching_window_seconds": int(consumer.batching_window),
        "event_source_report_batch_item_failures": consumer.report_batch_item_failures,
        "event_source_max_concurrency": consumer.max_concurrency or 0,
        "lambda_env": consumer.environment(),
    }


def render_tfvars(variables: Mapping[str, Any]) -> str:
    """Render sqslab/templates/terraform.tfvars.j2: ``{variable: value}`` with values of
    str, int, float or bool, or a map of str to str (the consumer's environment).

    Every value goes through the ``hcl`` filter, never raw; ValueError names every
    variable whose name or value cannot be written.
    """
    import jinja2  # only the runner pays for it

    problems = [f"{key}: {_tfvar_problem(key, value)}" for key, value in variables.items() if _tfvar_problem(key, value)]
    if problems:
        raise ValueError("cannot render tfvars: " + "; ".join(problems))
    # An empty map is written on one line, aligned with the scalars, as terraform fmt does.
    scalars = {k: v for k, v in variables.items() if not isinstance(v, Mapping) or not v}
    maps = {k: v for k, v in variables.items() if isinstance(v, Mapping) and v}
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parents[2] / "templates")),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["hcl"] = hcl_value
    return env.get_template("terraform.tfvars.j2").render(scalars=scalars, maps=maps)


def _tfvar_problem(key: str, value: Any) -> str | None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        return "not a Terraform variable name"
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            return None
        return "a map must hold text keys and text values"
    if value is None or not isinstance(value, (str, int, float, bool)):
        return f"unexpected {type(value).__name__} {value!r}"
    return None


# -- finding things -----------------------------------------------------------------------


def find_terraform() -> str | None:
    """Return the terraform binary on PATH (or in SQSLAB_TERRAFORM), or None."""
    explicit = os.environ.get("SQSLAB_TERRAFORM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("terraform")


def _platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    os_name = {"win32": "windows"}.get(sys.platform, sys.platform)
    return f"{os_name}_{arch}"


def _mirror_has_provider(root: Path, provider: str = PROVIDER) -> bool:
    """True if ``root`` holds hashicorp/aws 5.x for this platform, unpacked or packed."""
    base = root / provider
    if not base.is_dir():
        return False
    plat = _platform()
    for child in base.iterdir():
        # Unpacked layout: <host>/<ns>/<type>/<version>/<os>_<arch>/terraform-provider-*
        if child.is_dir() and child.name.split(".")[0] == str(PROVIDER_MAJOR) and (child / plat).is_dir():
            return True
        # Packed layout: <host>/<ns>/<type>/terraform-provider-<type>_<version>_<os>_<arch>.zip
        m = re.fullmatch(r"terraform-provider-\w+_(\d+)\.[^_]+_" + re.escape(plat) + r"\.zip", child.name)
        if m and m.group(1) == str(PROVIDER_MAJOR):
            return True
    return False


def find_plugin_mirror() -> Path | None:
    """Return a filesystem mirror holding hashicorp/aws 5.x, or None (use the registry).

    SQSLAB_TF_PLUGIN_MIRROR wins when set (and must hold the provider); otherwise the
    well-known places in MIRROR_CANDIDATES are searched in order.
    """
    explicit = os.environ.get("SQSLAB_TF_PLUGIN_MIRROR")
    if explicit:
        path = Path(explicit).expanduser()
        if not _mirror_has_provider(path):
            raise TerraformError(
                f"SQSLAB_TF_PLUGIN_MIRROR={explicit} holds no {PROVIDER} {PROVIDER_MAJOR}.x for {_platform()}"
            )
        return path
    for candidate in MIRROR_CANDIDATES:
        path = Path(candidate).expanduser()
        if _mirror_has_provider(path):
            return path
    return None


def stack_dir() -> Path:
    """Return the directory of the shipped Terraform stack.

    Looked up in order: SQSLAB_TERRAFORM_DIR; ``terraform/`` beside the package (a
    source checkout or an editable install: edits there take effect);
    ``<prefix>/share/sqslab/terraform`` and the same under the user base (an installed
    wheel: setup.cfg ``[options.data_files]``).
    """
    candidates = []
    if os.environ.get("SQSLAB_TERRAFORM_DIR"):
        candidates.append(Path(os.environ["SQSLAB_TERRAFORM_DIR"]).expanduser())
    candidates.append(Path(__file__).resolve().parents[3] / "terraform")
    candidates.append(Path(sys.prefix) / "share" / "sqslab" / "terraform")
    candidates.append(Path(site.getuserbase()) / "share" / "sqslab" / "terraform")  # pip install --user
    for candidate in candidates:
        if (candidate / "main.tf").is_file() and (candidate / "modules").is_dir():
            return candidate
    raise TerraformError("the sqslab Terraform stack was not found; looked in " + ", ".join(map(str, candidates)))


def write_cli_config(path: Path, mirror: Path) -> Path:
    """Write a Terraform CLI config that installs hashicorp/aws from ``mirror`` only."""
    text = (
        "# Written by sqslab: hashicorp/aws from a local mirror, anything else as usual.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {hcl_value(str(mirror))}\n"
        f"    include = [{hcl_value(PROVIDER)}]\n"
        "  }\n"
        "  direct {\n"
        f"    exclude = [{hcl_value(PROVIDER)}]\n"
        "  }\n"
        "}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- .env -----------------------------------------------------------------------------------

#: terraform output name -> .env variable, in the order written.
ENV_FROM_OUTPUTS: tuple[tuple[str, str], ...] = (
    ("queue_url", "QUEUE_URL"),
    ("dlq_url", "DLQ_URL"),
    ("region", "AWS_REGION"),
    ("queue_arn", "QUEUE_ARN"),
    ("dlq_arn", "DLQ_ARN"),
    ("cluster_name", "ECS_CLUSTER"),
    ("service_name", "ECS_SERVICE"),
    ("task_definition_family", "TASK_DEFINITION_FAMILY"),
    ("log_group_name", "LOG_GROUP"),
    ("image_uri", "IMAGE_URI"),
    ("ecr_repository_url", "ECR_REPOSITORY_URL"),
)

_ENV_SAFE = re.compile(r"^[A-Za-z0-9_./:@%+=,-]*$")


def _flatten_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Accept ``terraform output -json`` (``{name: {value, sensitive}}``) or ``{name: value}``.

    Sensitive outputs are dropped.
    """
    flat: dict[str, Any] = {}
    for name, item in outputs.items():
        if isinstance(item, Mapping) and "value" in item and ("type" in item or "sensitive" in item):
            if item.get("sensitive"):
                continue
            flat[name] = item["value"]
        else:
            flat[name] = item
    return flat


def write_env_file(outputs: Mapping[str, Any], path: str | os.PathLike[str], endpoint_url: str | None = None) -> Path:
    """Write a ``.env`` for local tools from the stack's outputs; no credentials in it.

    ``outputs`` is ``terraform output -json`` as parsed, or already flattened. Outputs
    that are null (no DLQ), missing or sensitive are left out. ``endpoint_url`` adds
    AWS_ENDPOINT_URL, for a stack applied to an emulator.
    """
    flat = _flatten_outputs(outputs)
    lines = ["# Written by sqslab from `terraform output -json`. No credentials here."]
    for output, var in ENV_FROM_OUTPUTS:
        value = flat.get(output)
        if value is None or isinstance(value, (list, dict)):
            continue
        lines.append(f"{var}={_env_quote(str(value))}")
    if endpoint_url:
        lines.append(f"AWS_ENDPOINT_URL={_env_quote(endpoint_url)}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def _env_quote(value: str) -> str:
    if _ENV_SAFE.match(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# -- emulator-only files --------------------------------------------------------------------

_EMULATOR_NOTE = (
    "# Written by sqslab.targets.aws.terraform into a working copy for a run against a local emulator.\n"
    "# Never part of the shipped stack (terraform/); see docs/aws.md, \"Applying to the emulator\".\n"
)

# Waits until the DLQ answers GetQueueUrl. Runs with Terraform's environment, which
# points AWS_ENDPOINT_URL at the emulator.
_WAIT_FOR_DLQ = """\
import os, sys, time
import boto3
sqs = boto3.client("sqs", region_name=os.environ["AWS_REGION"])
deadline = time.monotonic() + 60
while True:
    try:
        sqs.get_queue_url(QueueName=os.environ["QUEUE_NAME"])
        break
    except sqs.exceptions.QueueDoesNotExist:
        if time.monotonic() > deadline:
            sys.exit("sqslab: the DLQ did not appear within 60 s")
        time.sleep(0.05)
"""


def _emulator_queue_files(python: str) -> dict[str, str]:
    """The two files that let the main queue start as soon as its DLQ exists."""
    extra = (
        _EMULATOR_NOTE
        + "#\n"
        "# Every aws_sqs_queue create waits ~25 s in the provider (6 identical attribute\n"
        "# reads, 5 s apart). On AWS the main queue must wait for the DLQ resource, since a\n"
        "# redrive policy may only name a queue that exists: 50 s for the two. Here the main\n"
        "# queue waits only until the DLQ answers GetQueueUrl, so both waits overlap.\n\n"
        'data "aws_partition" "current" {}\n'
        'data "aws_region" "current" {}\n'
        'data "aws_caller_identity" "current" {}\n\n'
        'resource "terraform_data" "dlq_exists" {\n'
        "  count = var.dlq_enabled ? 1 : 0\n\n"
        '  input = "arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.name}'
        ':${data.aws_caller_identity.current.account_id}:${local.dlq_name}"\n\n'
        '  provisioner "local-exec" {\n'
        f"    interpreter = [{hcl_value(python)}, \"-c\"]\n"
        f"    command     = {hcl_value(_WAIT_FOR_DLQ)}\n"
        "    environment = {\n"
        "      QUEUE_NAME = local.dlq_name\n"
        "      AWS_REGION = data.aws_region.current.name\n"
        "    }\n"
        "  }\n"
        "}\n"
    )
    override = (
        _EMULATOR_NOTE
        + "locals {\n"
        "  dlq_arn = var.dlq_enabled ? terraform_data.dlq_exists[0].output : null\n"
        "}\n"
    )
    return {
        "modules/queue/sqslab_emulator.tf": extra,
        "modules/queue/sqslab_emulator_override.tf": override,
    }


# -- the wrapper ----------------------------------------------------------------------------


class Terraform:
    """The sqslab stack in a private working copy under ``state_dir``.

    ``state_dir/stack/`` holds the copy, its ``.terraform/`` and the local state, so a
    later process with the same ``state_dir`` can read the outputs or destroy. With
    ``endpoint_url`` every command talks to that emulator with dummy credentials;
    without it, the usual AWS credential chain of the environment is used.
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        endpoint_url: str | None = None,
        binary: str | None = None,
        mirror: Path | bool | None = True,
        stack: Path | None = None,
        env: Mapping[str, str] | None = None,
        reuse_provider: bool | None = None,
    ) -> None:
        """``mirror=True`` finds one (find_plugin_mirror), a Path uses it, None/False uses the registry.

        ``reuse_provider`` (default: on for an emulator, off for AWS) keeps one provider
        process for all commands instead of four launches per apply; see ProviderServer.
        """
        self.state_dir = Path(state_dir).resolve()
        self.workdir = self.state_dir / "stack"
        self.endpoint_url = endpoint_url
        found = binary or find_terraform()
        if not found:
            raise TerraformError("terraform was not found on PATH (or SQSLAB_TERRAFORM); install Terraform >= 1.9")
        self.binary = found
        if mirror is True:
            self.mirror = find_plugin_mirror()
        elif mirror:
            self.mirror = Path(mirror)
        else:
            self.mirror = None
        self.stack = Path(stack) if stack is not None else stack_dir()
        self._extra_env = dict(env or {})
        #: Seconds each command took, by name; the last run of each.
        self.timings: dict[str, float] = {}
        if reuse_provider is None:
            # Not with a CA bundle: the provider cannot load one twice in a process.
            reuse_provider = bool(endpoint_url) and not (
                endpoint_url.startswith("https:") and os.environ.get("AWS_CA_BUNDLE")  # type: ignore[union-attr]
            )
        self.reuse_provider = reuse_provider
        self._provider: ProviderServer | None = None

    def __enter__(self) -> Terraform:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the provider process this object started, if any. Safe to call twice."""
        provider, self._provider = self._provider, None
        if provider is not None:
            provider.stop()

    # -- environment and files --

    def environment(self) -> dict[str, str]:
        """The environment every terraform command runs with."""
        env = dict(os.environ)
        env["TF_IN_AUTOMATION"] = "1"
        env["TF_INPUT"] = "0"
        env["CHECKPOINT_DISABLE"] = "1"  # no version check over the network (~1 s)
        if self.mirror is not None:
            env["TF_CLI_CONFIG_FILE"] = str(write_cli_config(self.state_dir / "terraformrc", self.mirror))
        if self.endpoint_url:
            from sqslab.credentials import emulator_env

            env = emulator_env(env)
            # The environment, not an endpoints {} block: the provider validates such a
            # block for ~3 s on each of the four launches of an apply.
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        env.update(self._extra_env)
        return env

    def _provider_binary(self) -> Path | None:
        """The hashicorp/aws binary init installed in the working copy, or None."""
        found = sorted((self.workdir / ".terraform" / "providers" / PROVIDER).glob(f"*/{_platform()}/terraform-provider-aws*"))
        return found[-1] if found else None

    def _reattach_env(self) -> dict[str, str]:
        """TF_REATTACH_PROVIDERS for a running shared provider, started on first use."""
        if not self.reuse_provider:
            return {}
        if self._provider is None or not self._provider.running:
            binary = self._provider_binary()
            if binary is None:
                return {}  # not initialised yet: terraform launches its own
            if self._provider is not None:
                self._provider.stop()
            env = self.environment()
            env.pop("AWS_CA_BUNDLE", None)
            self._provider = ProviderServer(binary, env=env, log_path=self.state_dir / "provider.log").start()
        return {"TF_REATTACH_PROVIDERS": self._provider.reattach}

    def prepare(self) -> Path:
        """Copy the stack into the working copy (keeping .terraform and state) and return it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for entry in self.workdir.iterdir():
            if entry.name in _KEEP:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        ignore = shutil.ignore_patterns(".terraform", "*.tfstate", "*.tfstate.*", ".terraform.lock.hcl", "*.tfvars", "*_override.tf")
        for entry in self.stack.iterdir():
            if entry.name in _KEEP or entry.name.startswith(".") or entry.name.endswith((".tfvars", "_override.tf")):
                continue
            if entry.is_dir():
                shutil.copytree(entry, self.workdir / entry.name, ignore=ignore)
            elif entry.suffix in (".tf", ".hcl", ".md"):
                shutil.copy2(entry, self.workdir / entry.name)
        if self.endpoint_url:
            for rel, text in _emulator_queue_files(sys.executable).items():
                (self.workdir / rel).write_text(text)
        return self.workdir

    @property
    def tfvars_path(self) -> Path:
        """Where apply keeps the tfvars it was given, for destroy."""
        return self.workdir / "sqslab.tfvars"

    @property
    def state_path(self) -> Path:
        """The local state file."""
        return self.workdir / "terraform.tfstate"

    # -- commands --

    def run(self, args: list[str], *, on_line: LineCallback | None = None, what: str | None = None) -> str:
        """Run ``terraform <args>`` in the working copy; return stdout, raise TerraformError.

        Each stdout and stderr line goes to ``on_line`` as it comes.
        """
        name = what or args[0]
        env = self.environment()
        if args[0] not in ("init", "fmt"):
            env.update(self._reattach_env())
        t0 = time.monotonic()
        code, stdout_lines, stderr_tail = _stream([self.binary, f"-chdir={self.workdir}", *args], env, on_line, name)
        self.timings[name] = time.monotonic() - t0
        if code != 0:
            tail = list(stderr_tail) or stdout_lines[-20:]
            raise TerraformError(
                f"terraform {name} failed (exit {code}) in {self.workdir}",
                command=name,
                returncode=code,
                stderr_tail=[line for line in tail if line.strip()][-15:],
            )
        return "\n".join(stdout_lines)

    def init(self, on_line: LineCallback | None = None) -> None:
        """Copy the stack and run ``terraform init`` (from the mirror when there is one).

        With ``reuse_provider`` the shared provider process is started here too, so the
        first apply does not pay for it.
        """
        self.prepare()
        self.run(["init", "-input=false", "-no-color"], on_line=on_line)
        self._reattach_env()

    def validate(self) -> None:
        """Run ``terraform validate``; the working copy must be initialised."""
        self.run(["validate", "-no-color"])

    def apply(self, tfvars: str | os.PathLike[str], on_line: LineCallback | None = None) -> dict[str, Any]:
        """Apply the stack with ``tfvars`` (HCL text or a file path) and return the outputs.

        Runs init first when the working copy has none. Output lines stream to ``on_line``.
        """
        self._check_target()
        if not (self.workdir / ".terraform").is_dir():
            self.init(on_line=on_line)
        else:
            self.prepare()
        self._keep_tfvars(tfvars)
        self._target_path.write_text(json.dumps({"endpoint_url": self.endpoint_url}) + "\n")
        self.run(
            ["apply", "-auto-approve", "-input=false", "-no-color", f"-var-file={self.tfvars_path}"],
            on_line=on_line,
        )
        return self.output_json()

    def output_json(self) -> dict[str, Any]:
        """Return the outputs as ``{name: value}`` (sensitive ones left out); {} with no state."""
        if not self.state_path.is_file():
            return {}
        raw = json.loads(self.run(["output", "-json", "-no-color"]) or "{}")
        return _flatten_outputs(raw)

    def destroy(self, on_line: LineCallback | None = None) -> bool:
        """Destroy everything the state holds. Idempotent: False when there was nothing.

        Uses the tfvars the last apply kept in the working copy.
        """
        if not self._state_has_resources():
            return False
        self._check_target()
        if not self.tfvars_path.is_file():
            raise TerraformError(f"cannot destroy: {self.tfvars_path} (kept by apply) is missing", command="destroy")
        if not (self.workdir / ".terraform").is_dir():
            self.init(on_line=on_line)
        else:
            self.prepare()
        self.run(
            ["destroy", "-auto-approve", "-input=false", "-no-color", f"-var-file={self.tfvars_path}"],
            on_line=on_line,
        )
        return True

    @property
    def _target_path(self) -> Path:
        return self.state_dir / "target.json"

    def _check_target(self) -> None:
        """Refuse to touch a state made against another endpoint (emulator vs AWS).

        Resources are known by name (IAM roles, queues): an emulator's state destroyed
        with real credentials could delete real roles of the same name.
        """
        if not self._state_has_resources() or not self._target_path.is_file():
            return
        recorded = json.loads(self._target_path.read_text()).get("endpoint_url")
        if recorded != self.endpoint_url:
            where = lambda url: f"the emulator at {url}" if url else "AWS"  # noqa: E731
            raise TerraformError(
                f"{self.state_path} holds resources applied to {where(recorded)}, "
                f"but this Terraform targets {where(self.endpoint_url)}; use the same endpoint_url"
            )

    def _keep_tfvars(self, tfvars: str | os.PathLike[str]) -> None:
        if isinstance(tfvars, os.PathLike) or (isinstance(tfvars, str) and "\n" not in tfvars and Path(tfvars).is_file()):
            text = Path(tfvars).read_text()
        else:
            text = str(tfvars)
        self.tfvars_path.write_text(text)

    def _state_has_resources(self) -> bool:
        return state_has_resources(self.state_path)


def _stream(cmd: list[str], env: dict[str, str], on_line: LineCallback | None, name: str) -> tuple[int, list[str], list[str]]:
    """Run a command, handing each stdout and stderr line to on_line as it comes; (exit
    code, stdout lines, the last 40 stderr lines). On Ctrl-C the command (which got the
    SIGINT too) is given a minute to stop gracefully."""
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                text=True, bufsize=1)
    except OSError as exc:
        raise TerraformError(f"cannot run {cmd[0]}: {exc}", command=name) from exc
    stderr_tail: deque[str] = deque(maxlen=40)
    stdout_lines: list[str] = []

    def pump_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            stderr_tail.append(line)
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump_stderr, name="sqslab-terraform-stderr", daemon=True)
    reader.start()
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            stdout_lines.append(line)
            if on_line is not None:
                on_line(line)
        code = proc.wait()
    except BaseException:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        reader.join(timeout=5)
    return code, stdout_lines, list(stderr_tail)


def state_has_resources(state_path: Path) -> bool:
    """True when a Terraform state file holds managed resources (an unreadable one counts:
    terraform will say what is wrong with it)."""
    if not state_path.is_file():
        return False
    try:
        state = json.loads(state_path.read_text() or "{}")
    except json.JSONDecodeError:
        return True
    return any(r.get("mode") == "managed" and r.get("instances") for r in state.get("resources", []))


class ProviderServer:
    """One hashicorp/aws process serving many terraform commands (emulator runs only).

    Terraform normally starts the provider four times per apply (schema, validate, plan,
    apply) and asks it for its whole schema each time, ~1 s of CPU apiece here. Started
    with ``-debug``, the provider stays up and prints a TF_REATTACH_PROVIDERS value;
    terraform then attaches to it instead (Terraform's documented way to run a provider
    outside it, made for debuggers). The stack, the plan and the provider binary are the
    same; only who starts the process differs. The process dies with ours (Linux).
    """

    START_TIMEOUT_S = 60.0
    _LINE = re.compile(r"TF_REATTACH_PROVIDERS='(?P<value>\{.*\})'")

    def __init__(self, binary: Path, *, env: Mapping[str, str], log_path: Path) -> None:
        self.binary = Path(binary)
        self.env = dict(env)
        self.log_path = Path(log_path)
        self.reattach = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def running(self) -> bool:
        """True while the provider process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> ProviderServer:
        """Start the provider in debug mode and wait for its reattach line."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_path, "wb") as log:
                self._proc = subprocess.Popen(
                    [str(self.binary), "-debug"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    start_new_session=True,  # Ctrl-C is for terraform, which then stops cleanly
                    preexec_fn=die_with_parent(signal.SIGTERM),
                )
        except OSError as exc:
            raise TerraformError(f"cannot start the provider {self.binary}: {exc}") from exc
        self._finalizer = weakref.finalize(self, _stop_process, self._proc)
        deadline = time.monotonic() + self.START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = self._LINE.search(self.log_path.read_text(errors="replace"))
            if match:
                self.reattach = match.group("value")
                return self
            if not self.running:
                break
            time.sleep(0.05)
        tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
        self.stop()
        raise TerraformError(f"the provider {self.binary.name} did not start in debug mode", stderr_tail=tail)

    def stop(self) -> None:
        """Stop the provider. Safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()
        self._proc = None


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
