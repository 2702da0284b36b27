variable "env" {
  type        = string
  description = "Environment prefix of every resource name (the seed's \"dev\")."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer managed KMS key that encrypts the operators' topic. Its policy must let cloudwatch.amazonaws.com and sns.amazonaws.com use it."
}

variable "alarm_email" {
  type        = string
  description = "E-mail address subscribed to the operators' topic (it must confirm the subscription), or null for none."
  default     = null
}

variable "function_names" {
  type        = map(string)
  description = "Lambda function names by role: processor, projector, publisher (the lambda module's function_names)."
}

variable "dlq_name" {
  type        = string
  description = "Name of the processing dead-letter queue."
}

variable "api_id" {
  type        = string
  description = "ID of the HTTP API (API Gateway)."
}

variable "api_5xx_threshold" {
  type        = number
  description = "5xx answers of the API in five minutes above which its alarm fires."
  default     = 5
}

variable "metrics_namespace" {
  type        = string
  description = "CloudWatch namespace of the business metrics the Lambdas emit in Embedded Metric Format (the code's telemetry.EMFNamespace)."
  default     = "orderledger"
}
