variable "name" {
  description = "Prefix for the function, its role and its log group."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the queue the mapping polls."
  type        = string
}

variable "package_path" {
  description = "Path of the deployment package (a zip sqslab builds)."
  type        = string
}

variable "source_code_hash" {
  description = "Base64 SHA-256 of the package: a new hash is a new upload."
  type        = string
}

variable "entry_handler" {
  description = "The handler Lambda calls: sqslab's entry, which calls var.handler."
  type        = string
}

variable "handler" {
  description = "Your handler, module.function."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime identifier."
  type        = string
}

variable "timeout" {
  description = "Function timeout, seconds."
  type        = number
}

variable "memory" {
  description = "Function memory, MB."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrency; -1 for none."
  type        = number
}

variable "environment" {
  description = "The function's environment (scenario lambda.env)."
  type        = map(string)
}

variable "enabled" {
  description = "Whether the mapping polls."
  type        = bool
}

variable "batch_size" {
  description = "Records per batch."
  type        = number
}

variable "batching_window_seconds" {
  description = "Batching window, seconds."
  type        = number
}

variable "report_batch_item_failures" {
  description = "The mapping reads partial batch responses."
  type        = bool
}

variable "max_concurrency" {
  description = "The mapping's maximum concurrency; 0 for none."
  type        = number
}

variable "log_retention_days" {
  description = "Retention of the function's log group, days."
  type        = number
}
