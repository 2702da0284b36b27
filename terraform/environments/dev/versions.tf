terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.47"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "orderledger"
      Environment = var.env
      ManagedBy   = "terraform"
    }
  }
}
