# Topics, the processing queue, its dead-letter queue, and the queue that
# receives the stream mappings' failed batches.

locals {
  # Settings shared with the code (package resources): a message is delivered
  # at most this many times before it is dead-lettered, and the visibility
  # timeout is six times the processor's timeout, as AWS recommends for
  # Lambda event sources.
  max_receive_count          = 3
  visibility_timeout_seconds = 6 * var.processor_timeout_seconds
  dead_letter_retention      = 1209600
}

resource "aws_sns_topic" "events" {
  name              = "${var.env}-order-events"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic" "completed" {
  name              = "${var.env}-order-completed"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.env}-order-dlq"
  message_retention_seconds         = local.dead_letter_retention
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "processing" {
  name                              = "${var.env}-order-processing"
  visibility_timeout_seconds        = local.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = local.max_receive_count
  })
}

# Only the processing queue may use the dead-letter queue.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.processing.arn]
  })
}

# Failed batches of the DynamoDB Streams mappings (projector, publisher).
resource "aws_sqs_queue" "stream_failures" {
  name                              = "${var.env}-order-stream-failures"
  message_retention_seconds         = local.dead_letter_retention
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

# The processing queue admits messages from the events topic only.
data "aws_iam_policy_document" "processing_queue" {
  statement {
    sid       = "EventsTopicOnly"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.processing.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.events.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "processing" {
  queue_url = aws_sqs_queue.processing.id
  policy    = data.aws_iam_policy_document.processing_queue.json
}

resource "aws_sns_topic_subscription" "processing" {
  topic_arn            = aws_sns_topic.events.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.processing.arn
  raw_message_delivery = true
  filter_policy_scope  = "MessageAttributes"

  filter_policy = jsonencode({
    event_type = var.processing_event_types
  })

  depends_on = [aws_sqs_queue_policy.processing]
}
