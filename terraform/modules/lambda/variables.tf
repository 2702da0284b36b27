variable "env" {
  type        = string
  description = "Environment prefix of every resource name (the seed's \"dev\")."
}

variable "package_dir" {
  type        = string
  description = "Directory holding processor.zip, projector.zip, publisher.zip and api.zip, as built by `make lambdas` (build/lambdas)."
}

variable "api_enabled" {
  type        = bool
  description = "Whether to create the api function (true when API Gateway fronts a Lambda rather than the ALB)."
  default     = false
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer managed KMS key used by the tables, topics, queues, log groups and environment variables."
}

variable "events_table_arn" {
  type        = string
  description = "ARN of the events table."
}

variable "events_stream_arn" {
  type        = string
  description = "ARN of the events table's stream (event source of the projector and the publisher)."
}

variable "orders_table_arn" {
  type        = string
  description = "ARN of the read table."
}

variable "environment" {
  type        = map(string)
  description = "Extra environment variables of every function (LEDGER_* settings, such as LEDGER_ORDERS_TABLE)."
  default     = {}
}

variable "events_topic_arn" {
  type        = string
  description = "ARN of the topic that announces placed orders."
}

variable "completed_topic_arn" {
  type        = string
  description = "ARN of the topic that announces completed, failed and cancelled orders."
}

variable "processing_queue_arn" {
  type        = string
  description = "ARN of the processing queue (event source of the processor)."
}

variable "dlq_name" {
  type        = string
  description = "Name of the processing queue's dead-letter queue, watched by an alarm."
}

variable "stream_failure_queue_arn" {
  type        = string
  description = "ARN of the queue that receives the stream mappings' failed batches."
}

variable "stream_failure_queue_name" {
  type        = string
  description = "Name of the queue that receives the stream mappings' failed batches, watched by an alarm."
}

variable "subnet_ids" {
  type        = list(string)
  description = "Private subnets the functions run in (they reach AWS through the VPC endpoints)."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the subnets; the functions' security group is created there."
}

variable "vpc_cidr_block" {
  type        = string
  description = "CIDR block of the VPC: the functions may open HTTPS connections to the interface endpoints in it."
}

variable "dynamodb_prefix_list_id" {
  type        = string
  description = "Prefix list of the DynamoDB gateway endpoint, allowed as an HTTPS egress destination."
}

variable "processor_timeout_seconds" {
  type        = number
  description = "Timeout of the processor function; the processing queue's visibility timeout must be six times this."
  default     = 30
}

variable "memory_size" {
  type        = number
  description = "Memory of every function, in MiB. The functions wait on DynamoDB, SNS and the payment service far more than they compute, so 128 MiB bills half the GB-seconds of 256 (BENCHMARKS.md, cost per order)."
  default     = 128
}

variable "stream_batch_size" {
  type        = number
  description = "Largest batch of stream records one invocation of the publisher receives (no batching window: notifications and the processing queue stay prompt)."
  default     = 100
}

variable "stream_maximum_retry_attempts" {
  type        = number
  description = "How many times a failed stream batch is retried (after bisecting) before it goes to the on-failure destination."
  default     = 5

  validation {
    condition     = var.stream_maximum_retry_attempts >= 0 && var.stream_maximum_retry_attempts <= 10
    error_message = "Stream retries must be bounded: between 0 and 10."
  }
}

variable "processor_maximum_concurrency" {
  type        = number
  description = "Most concurrent processor invocations the SQS mapping starts (2 to 1000)."
  default     = 10
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the functions' log groups, in days."
  default     = 365
}

variable "iterator_age_threshold_ms" {
  type        = number
  description = "Stream iterator age, in milliseconds, above which the iterator-age alarms fire."
  default     = 60000
}

variable "alarm_actions" {
  type        = list(string)
  description = "ARNs (for example an SNS topic) notified when an alarm fires."
  default     = []
}

variable "projector_batch_size" {
  type        = number
  description = "Largest batch of stream records one projector invocation receives. With the batching window, an order's events usually arrive in one batch and its read item is written once (BENCHMARKS.md, cost per order)."
  default     = 1000

  validation {
    condition     = var.projector_batch_size >= 1 && var.projector_batch_size <= 10000
    error_message = "A DynamoDB stream batch holds 1 to 10000 records."
  }
}

variable "projector_batching_window_seconds" {
  type        = number
  description = "Longest the projector mapping waits to fill a batch: how stale the read table may be, in seconds, traded for fewer read-table writes. 0 writes as soon as records arrive."
  default     = 2

  validation {
    condition     = var.projector_batching_window_seconds >= 0 && var.projector_batching_window_seconds <= 300
    error_message = "A batching window is 0 to 300 seconds."
  }
}

variable "processor_batching_window_seconds" {
  type        = number
  description = "Longest the processor's SQS mapping waits to fill a batch of 10 messages: one receive, delete and invocation per batch instead of per order."
  default     = 1

  validation {
    condition     = var.processor_batching_window_seconds >= 0 && var.processor_batching_window_seconds <= 300
    error_message = "A batching window is 0 to 300 seconds."
  }
}
