# Credentials and endpoints come from the usual AWS chain (environment, profile, SSO).
# Runs against a local emulator set AWS_ENDPOINT_URL and dummy credentials in the
# environment (sqslab.targets.aws.terraform); nothing in the shipped stack changes for them.
provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      "sqslab:name" = var.name
      "managed-by"  = "terraform"
    })
  }
}
