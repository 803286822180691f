#!/usr/bin/env bash
# Build the consumer image (consumer/Dockerfile) and push it to ECR: the same code as
# `sqslab image push` (sqslab/targets/aws/image.py), for shells and CI without the sqslab command.
#
#   scripts/build_and_push.sh [TAG]
#
# TAG defaults to the git commit (git rev-parse --short=12 HEAD), with -dirty-<epoch> when
# consumer/ has uncommitted changes. The repository is created when missing; its tags are
# immutable, so a tag that is already there is not pushed again. The docker login password
# goes to docker on stdin only. Prints the image URI last on stdout; pass the tag to
# `sqslab run --target aws --image-tag TAG`.
#
# Environment: AWS_REGION (default us-west-1), ECR_REPOSITORY (default sqs-demo/consumer),
# DOCKER (default docker), PYTHON (default python3, with sqslab's requirements). Needs
# credentials allowed to push (docs/aws.md); no AWS CLI.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"

args=(push --repository "${ECR_REPOSITORY:-sqs-demo/consumer}" --region "${AWS_REGION:-us-west-1}")
if [[ $# -ge 1 ]]; then
  args+=(--tag "$1")
fi

cd "$root"
exec "$python" -m sqslab.targets.aws.image "${args[@]}"
