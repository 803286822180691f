variable "name" {
  description = "Prefix for the role names."
  type        = string
}

variable "queue_arns" {
  description = "ARNs of the queue and DLQ the consumer may use."
  type        = list(string)
}

variable "log_group_arn" {
  description = "ARN of the consumer log group (as aws_cloudwatch_log_group.arn, without :*)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the repository the image is pulled from."
  type        = string
}

variable "extra_repository_arns" {
  description = "ARNs of further ECR repositories the task may pull from (a consumer program's image)."
  type        = list(string)
  default     = []
}
