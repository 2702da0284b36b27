variable "env" {
  type        = string
  description = "Environment prefix of every resource name (the seed's \"dev\")."
}

variable "kms_key_arn" {
  type        = string
  description = "ARN of the customer managed KMS key that encrypts both tables and the stream."
}

variable "deletion_protection" {
  type        = bool
  description = "Whether DynamoDB refuses to delete the tables (turn off only to tear an environment down)."
  default     = true
}
