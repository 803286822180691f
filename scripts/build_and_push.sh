#!/usr/bin/env bash
# Build the consumer image (consumer/Dockerfile) and push it to the stack's ECR repository.
#
#   scripts/build_and_push.sh [TAG]
#
# TAG defaults to the git commit (short), with -dirty when the tree has changes. The
# repository's tags are immutable, so a tag that is already there is not pushed again.
# Prints the image URI last; pass the tag to sqslab (image_tag) or Terraform.
#
# Environment: AWS_REGION (default us-west-1), ECR_REPOSITORY (default sqs-demo/consumer),
# DOCKER (default docker). Needs the AWS CLI v2 and credentials allowed to push (docs/aws.md).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
region="${AWS_REGION:-us-west-1}"
repository="${ECR_REPOSITORY:-sqs-demo/consumer}"
docker="${DOCKER:-docker}"

if [[ $# -ge 1 ]]; then
  tag="$1"
else
  tag="$(git -C "$root" rev-parse --short=12 HEAD)"
  if [[ -n "$(git -C "$root" status --porcelain -- consumer)" ]]; then
    tag="${tag}-dirty-$(date +%s)"
  fi
fi

account="$(aws sts get-caller-identity --query Account --output text)"
registry="${account}.dkr.ecr.${region}.amazonaws.com"
uri="${registry}/${repository}:${tag}"

if aws ecr describe-images --region "$region" --repository-name "$repository" \
  --image-ids imageTag="$tag" >/dev/null 2>&1; then
  echo "${uri} is already in ECR; not pushing it again (tags are immutable)." >&2
  echo "$uri"
  exit 0
fi

aws ecr get-login-password --region "$region" |
  "$docker" login --username AWS --password-stdin "$registry" >&2
# Fargate runs the task definition's X86_64 platform, whatever this machine is.
"$docker" build --platform linux/amd64 -t "$uri" "$root/consumer" >&2
"$docker" push "$uri" >&2
echo "$uri"
