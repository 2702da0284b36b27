output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider the roles trust."
  value       = local.provider_arn
}

output "publish_role_arn" {
  description = "Role the deploy workflow's image job assumes (repository variable AWS_PUBLISH_ROLE_ARN)."
  value       = aws_iam_role.publish.arn
}

output "plan_role_arn" {
  description = "Role the deploy workflow's plan job assumes (repository variable AWS_PLAN_ROLE_ARN)."
  value       = aws_iam_role.plan.arn
}

output "apply_role_arn" {
  description = "Role the deploy workflow's apply job assumes from the protected environment (repository variable AWS_APPLY_ROLE_ARN)."
  value       = aws_iam_role.apply.arn
}
