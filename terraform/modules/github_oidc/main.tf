# GitHub Actions' access to the account, without long-lived keys: a workflow
# job asks GitHub for an OpenID Connect token and exchanges it for a role's
# short session. Each role trusts only tokens of one repository and either
# its main branch (publish, plan) or its protected environment (apply), the
# `sub` claim GitHub writes as repo:<owner/name>:ref:refs/heads/<branch> or
# repo:<owner/name>:environment:<name>.
#
# The roles are named ci-<env>-*, outside the <env>-* names the apply role may
# manage, so CI can never widen its own access: changes to this module are
# applied by an administrator.

data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

data "aws_partition" "current" {}

locals {
  oidc_host = "token.actions.githubusercontent.com"

  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.region
  account   = data.aws_caller_identity.current.account_id

  provider_arn = var.oidc_provider_arn != null ? var.oidc_provider_arn : aws_iam_openid_connect_provider.github[0].arn

  branch_subject      = "repo:${var.github_repository}:ref:refs/heads/${var.github_branch}"
  environment_subject = "repo:${var.github_repository}:environment:${var.github_environment}"

  role_prefix = "ci-${var.env}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
}

# Tokens of the main branch's workflow runs (pushes to main).
data "aws_iam_policy_document" "trust_branch" {
  statement {
    sid     = "GitHubMainBranch"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = [local.branch_subject]
    }
  }
}

# Tokens of jobs that run in the protected environment (after its reviewer
# approved them).
data "aws_iam_policy_document" "trust_environment" {
  statement {
    sid     = "GitHubProtectedEnvironment"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_host}:sub"
      values   = [local.environment_subject]
    }
  }
}

# The read and apply permissions are managed policies: together they pass the
# 10,240 characters a role's inline policies may hold.
resource "aws_iam_policy" "read" {
  name        = "${local.role_prefix}-read"
  description = "Read ${var.env} and its Terraform state, hold the state lock (terraform plan)."
  policy      = data.aws_iam_policy_document.read.json
}

resource "aws_iam_policy" "apply_services" {
  name        = "${local.role_prefix}-apply-services"
  description = "Change ${var.env}'s tables, queues, topics, functions, logs, alarms, keys and image repository, and write its Terraform state."
  policy      = data.aws_iam_policy_document.apply_services.json
}

resource "aws_iam_policy" "apply_network" {
  name        = "${local.role_prefix}-apply-network"
  description = "Change ${var.env}'s network, load balancer, ECS service, HTTP API and roles."
  policy      = data.aws_iam_policy_document.apply_network.json
}

resource "aws_iam_role" "publish" {
  name                 = "${local.role_prefix}-publish"
  description          = "GitHub Actions, ${var.github_repository} ${var.github_branch}: push the ledger image to ECR."
  assume_role_policy   = data.aws_iam_policy_document.trust_branch.json
  max_session_duration = var.max_session_seconds
}

resource "aws_iam_role_policy" "publish" {
  name   = "${local.role_prefix}-publish"
  role   = aws_iam_role.publish.id
  policy = data.aws_iam_policy_document.publish.json
}

resource "aws_iam_role" "plan" {
  name                 = "${local.role_prefix}-plan"
  description          = "GitHub Actions, ${var.github_repository} ${var.github_branch}: terraform plan of ${var.env} (read only, state lock)."
  assume_role_policy   = data.aws_iam_policy_document.trust_branch.json
  max_session_duration = var.max_session_seconds
}

resource "aws_iam_role_policy_attachment" "plan_read" {
  role       = aws_iam_role.plan.name
  policy_arn = aws_iam_policy.read.arn
}

resource "aws_iam_role" "apply" {
  name                 = "${local.role_prefix}-apply"
  description          = "GitHub Actions, ${var.github_repository} environment ${var.github_environment}: terraform apply of ${var.env}."
  assume_role_policy   = data.aws_iam_policy_document.trust_environment.json
  max_session_duration = var.max_session_seconds
}

resource "aws_iam_role_policy_attachment" "apply" {
  for_each = {
    read     = aws_iam_policy.read.arn
    services = aws_iam_policy.apply_services.arn
    network  = aws_iam_policy.apply_network.arn
  }

  role       = aws_iam_role.apply.name
  policy_arn = each.value
}
