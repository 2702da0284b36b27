variable "env" {
  type        = string
  description = "Environment prefix of every resource name (the seed's \"dev\")."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer managed KMS key that encrypts the topics and queues. Its policy must let sns.amazonaws.com use it."
}

variable "processor_timeout_seconds" {
  type        = number
  description = "Timeout of the processor Lambda; the processing queue's visibility timeout is six times this."
  default     = 30

  validation {
    condition     = var.processor_timeout_seconds >= 1 && var.processor_timeout_seconds <= 900
    error_message = "The processor timeout must be between 1 and 900 seconds."
  }
}

variable "processing_event_types" {
  type        = list(string)
  description = "Values of the event_type message attribute that the processing queue receives from the events topic."
  default     = ["OrderPlaced"]
}

variable "message_retention_seconds" {
  type        = number
  description = "How long the processing queue keeps a message; the dead-letter queues keep theirs for 14 days."
  default     = 345600
}
