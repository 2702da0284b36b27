data "aws_iam_policy_document" "assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

# The execution role: ECS pulls the image and ships the logs with it.
data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "Authenticate"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  description        = "ECS task execution role of ${local.name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "execution" {
  name   = "${local.name}-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# The task role: what `ledger serve --backend aws` itself may do as the API.
data "aws_iam_policy_document" "task" {
  statement {
    sid       = "AppendEvents"
    actions   = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:ConditionCheckItem"]
    resources = [var.events_table_arn]
  }

  statement {
    sid       = "ReadOrders"
    actions   = ["dynamodb:GetItem", "dynamodb:Query"]
    resources = [var.orders_table_arn, "${var.orders_table_arn}/index/*"]
  }

  # At start, `serve --backend aws` resolves the environment (package
  # aws/bootstrap, Resolve): both tables' descriptions (the events stream's
  # ARN), the topics by name, the queues' URLs and ARNs. Without these the
  # task exits before it serves anything.
  statement {
    sid       = "ResolveTables"
    actions   = ["dynamodb:DescribeTable"]
    resources = [var.events_table_arn, var.orders_table_arn]
  }

  statement {
    sid       = "ResolveTopics"
    actions   = ["sns:ListTopics"]
    resources = ["*"] # ListTopics has no resource-level permissions
  }

  statement {
    sid       = "ResolveQueues"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes"]
    resources = ["arn:${data.aws_partition.current.partition}:sqs:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:${var.env}-order-*"]
  }

  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  description        = "Role of the ${local.name} containers"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "task" {
  name   = "${local.name}-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}
