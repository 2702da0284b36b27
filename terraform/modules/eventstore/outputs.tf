output "events_table_name" {
  description = "Name of the events table (the event log)."
  value       = aws_dynamodb_table.events.name
}

output "events_table_arn" {
  description = "ARN of the events table."
  value       = aws_dynamodb_table.events.arn
}

output "events_stream_arn" {
  description = "ARN of the events table's stream (NEW_IMAGE), read by the projector and the publisher."
  value       = aws_dynamodb_table.events.stream_arn
}

output "orders_table_name" {
  description = "Name of the read table."
  value       = aws_dynamodb_table.orders.name
}

output "orders_table_arn" {
  description = "ARN of the read table (its indexes are under <arn>/index/*)."
  value       = aws_dynamodb_table.orders.arn
}
