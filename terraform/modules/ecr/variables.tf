variable "repository_name" {
  description = "Name of the ECR repository."
  type        = string
}

variable "create_repository" {
  description = "Create the repository (true) or look up an existing one (false)."
  type        = bool
}
