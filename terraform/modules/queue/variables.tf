variable "name" {
  description = "Prefix: the queues are <name>-queue and <name>-dlq (with .fifo for FIFO queues)."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "Main queue visibility timeout, seconds."
  type        = number
}

variable "message_retention_seconds" {
  description = "Main queue retention, seconds."
  type        = number
}

variable "receive_wait_time_seconds" {
  description = "Main queue default long-poll wait, seconds."
  type        = number
}

variable "delay_seconds" {
  description = "Main queue delivery delay, seconds."
  type        = number
}

variable "dlq_enabled" {
  description = "Create the DLQ and the redrive policy."
  type        = bool
}

variable "max_receive_count" {
  description = "Receives before a message moves to the DLQ."
  type        = number
}

variable "dlq_message_retention_seconds" {
  description = "DLQ retention, seconds."
  type        = number
}

variable "fifo_queue" {
  description = "Make the queue and its DLQ FIFO queues."
  type        = bool
}

variable "content_based_deduplication" {
  description = "FIFO only: deduplicate by a hash of the body."
  type        = bool
}

variable "high_throughput" {
  description = "FIFO only: deduplication and throughput per message group."
  type        = bool
}
