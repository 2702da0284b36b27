variable "env" {
  type        = string
  description = "Environment prefix of the resource names the deploy roles may manage (<env>-*)."
}

variable "github_repository" {
  type        = string
  description = "The GitHub repository, owner/name, whose workflows may assume the roles."

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "github_branch" {
  type        = string
  description = "The branch whose workflow runs may assume the publish and plan roles."
  default     = "main"
}

variable "github_environment" {
  type        = string
  description = "The protected GitHub environment whose jobs (and only those) may assume the apply role."
  default     = "dev"
}

variable "oidc_provider_arn" {
  type        = string
  description = "ARN of the account's existing GitHub OIDC provider (token.actions.githubusercontent.com); null creates it (an account holds one per URL)."
  default     = null
}

variable "ecr_repository_arn" {
  type        = string
  description = "ARN of the image repository the publish role pushes to."
}

variable "terraform_state_bucket" {
  type        = string
  description = "S3 bucket holding the environment's Terraform state (SSE-S3 encrypted, versioned), created beforehand."

  validation {
    condition     = var.terraform_state_bucket != null && length(var.terraform_state_bucket) > 0
    error_message = "terraform_state_bucket is required with the CI roles."
  }
}

variable "terraform_state_key" {
  type        = string
  description = "Key of the state object in the bucket; the lock file is <key>.tflock."
  default     = "orderledger/dev/terraform.tfstate"
}

variable "max_session_seconds" {
  type        = number
  description = "Longest session a workflow job gets from a role, in seconds."
  default     = 3600
}
