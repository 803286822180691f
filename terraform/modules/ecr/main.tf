# The repository for the consumer image, shared by every scenario unless renamed.
# create_repository = false uses one that exists already (created by another stack).

resource "aws_ecr_repository" "this" {
  #checkov:skip=CKV_AWS_136:Images are encrypted at rest with AES-256 (SSE-S3), free and with no KMS grants for the deployer and the execution role to hold; they contain only the public consumer code.
  count = var.create_repository ? 1 : 0

  name                 = var.repository_name
  image_tag_mutability = "IMMUTABLE"
  # A lab repository: `terraform destroy` removes it with its images.
  force_delete = true

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

data "aws_ecr_repository" "existing" {
  count = var.create_repository ? 0 : 1

  name = var.repository_name
}

locals {
  repository_name = var.create_repository ? aws_ecr_repository.this[0].name : data.aws_ecr_repository.existing[0].name
  repository_arn  = var.create_repository ? aws_ecr_repository.this[0].arn : data.aws_ecr_repository.existing[0].arn
  repository_url  = var.create_repository ? aws_ecr_repository.this[0].repository_url : data.aws_ecr_repository.existing[0].repository_url
}

resource "aws_ecr_lifecycle_policy" "this" {
  count = var.create_repository ? 1 : 0

  repository = aws_ecr_repository.this[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 5 images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 5
      }
      action = { type = "expire" }
    }]
  })
}
