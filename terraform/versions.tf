terraform {
  # 1.9+: variable validations may refer to other variables (the Fargate cpu/memory check).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60.0, < 6.0.0"
    }
  }
}
