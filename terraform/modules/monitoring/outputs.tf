output "alarm_topic_arn" {
  description = "ARN of the operators' SNS topic every alarm of the environment notifies."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.ledger.dashboard_name
}
