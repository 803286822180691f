# Credentials come from the usual AWS chain (environment, profile, SSO). Runs against a
# local emulator add a generated *_override.tf next to this file (sqslab.terraform) that
# sets the endpoints and dummy credentials; the shipped configuration targets real AWS.
provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      "sqslab:name" = var.name
      "managed-by"  = "terraform"
    })
  }
}
