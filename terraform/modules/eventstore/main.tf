# The append-only event log (one item per event) and the read table the
# projector maintains. Key design: eventstore/dynamostore/README.md.

locals {
  events_table_name = "${var.env}-order-event-log"
  orders_table_name = "${var.env}-orders"
}

resource "aws_dynamodb_table" "events" {
  name                        = local.events_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "stream_id"
  range_key                   = "version"
  stream_enabled              = true
  stream_view_type            = "NEW_IMAGE"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "stream_id"
    type = "S"
  }

  attribute {
    name = "version"
    type = "N"
  }

  # Idempotency records live in this table and expire through this attribute.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}

resource "aws_dynamodb_table" "orders" {
  name                        = local.orders_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "order_id"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "order_id"
    type = "S"
  }

  attribute {
    name = "status"
    type = "S"
  }

  attribute {
    name = "customer_name"
    type = "S"
  }

  attribute {
    name = "created_at"
    type = "S"
  }

  global_secondary_index {
    name            = "status-index"
    projection_type = "ALL"

    key_schema {
      attribute_name = "status"
      key_type       = "HASH"
    }

    key_schema {
      attribute_name = "created_at"
      key_type       = "RANGE"
    }
  }

  global_secondary_index {
    name            = "customer-index"
    projection_type = "ALL"

    key_schema {
      attribute_name = "customer_name"
      key_type       = "HASH"
    }

    key_schema {
      attribute_name = "created_at"
      key_type       = "RANGE"
    }
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }
}
