output "events_topic_arn" {
  description = "ARN of the topic that announces placed orders (feeds the processing queue)."
  value       = aws_sns_topic.events.arn
}

output "completed_topic_arn" {
  description = "ARN of the topic that announces completed, failed and cancelled orders."
  value       = aws_sns_topic.completed.arn
}

output "processing_queue_url" {
  description = "URL of the processing queue."
  value       = aws_sqs_queue.processing.url
}

output "processing_queue_arn" {
  description = "ARN of the processing queue (the processor's event source)."
  value       = aws_sqs_queue.processing.arn
}

output "dlq_url" {
  description = "URL of the processing queue's dead-letter queue."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the processing queue's dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the processing queue's dead-letter queue (for alarms)."
  value       = aws_sqs_queue.dlq.name
}

output "stream_failure_queue_url" {
  description = "URL of the queue that receives the stream mappings' failed batches."
  value       = aws_sqs_queue.stream_failures.url
}

output "stream_failure_queue_arn" {
  description = "ARN of the queue that receives the stream mappings' failed batches."
  value       = aws_sqs_queue.stream_failures.arn
}

output "stream_failure_queue_name" {
  description = "Name of the queue that receives the stream mappings' failed batches (for alarms)."
  value       = aws_sqs_queue.stream_failures.name
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the processing queue."
  value       = aws_sqs_queue.processing.visibility_timeout_seconds
}
