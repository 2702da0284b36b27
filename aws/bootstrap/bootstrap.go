// Package bootstrap creates the AWS resources of one orderledger environment
// (`ledger aws bootstrap`), with exactly the names and settings Terraform
// uses (both read package resources): the events table with its NEW_IMAGE
// stream and idempotency TTL, the read table with its indexes, the topics,
// the processing queue with its dead-letter redrive, the queue that
// receives the stream mappings' failure records, and the subscription
// that feeds placed orders to the queue. Bootstrap is idempotent: run twice,
// it changes nothing the second time and reports what already existed.
//
// It is meant for an emulator or a sandbox account; production is Terraform's.
package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
	"github.com/orderledger/orderledger/messaging"
)

// Report says what Bootstrap did and where things are.
type Report struct {
	// Created and Existing list resource names.
	Created  []string `json:"created"`
	Existing []string `json:"existing"`

	EventsStreamARN     string `json:"events_stream_arn"`
	EventsTopicARN      string `json:"events_topic_arn"`
	CompletedTopicARN   string `json:"completed_topic_arn"`
	ProcessingQueueURL  string `json:"processing_queue_url"`
	DeadLetterQueueURL  string `json:"dead_letter_queue_url"`
	ProcessingQueueARN  string `json:"processing_queue_arn"`
	DeadLetterQueueARN  string `json:"dead_letter_queue_arn"`
	ProcessingSubscribe string `json:"processing_subscription_arn"`

	// StreamFailureQueueURL and ARN are the queue the projector's and the
	// publisher's stream mappings send a batch's failure record to when its
	// retries run out.
	StreamFailureQueueURL string `json:"stream_failure_queue_url"`
	StreamFailureQueueARN string `json:"stream_failure_queue_arn"`
}

func (r *Report) note(created bool, name string) {
	if created {
		r.Created = append(r.Created, name)
	} else {
		r.Existing = append(r.Existing, name)
	}
}

// ProcessingFilterPolicy is the filter policy of the processing queue's
// subscription to the events topic: only placed orders start the saga.
func ProcessingFilterPolicy() string {
	b, _ := json.Marshal(map[string][]string{messaging.AttrEventType: {order.TypePlaced}})
	return string(b)
}

// Bootstrap creates every resource of environment n that does not exist and
// brings the settings of those that do in line.
func Bootstrap(ctx context.Context, c awsconfig.Clients, n resources.Names) (Report, error) {
	var r Report
	var err error
	if r.EventsStreamARN, err = eventsTable(ctx, c.DynamoDB, n.EventsTable, &r); err != nil {
		return r, err
	}
	if err = ordersTable(ctx, c.DynamoDB, n.OrdersTable, &r); err != nil {
		return r, err
	}
	if r.EventsTopicARN, err = topic(ctx, c.SNS, n.EventsTopic, &r); err != nil {
		return r, err
	}
	if r.CompletedTopicARN, err = topic(ctx, c.SNS, n.CompletedTopic, &r); err != nil {
		return r, err
	}
	if r.DeadLetterQueueURL, r.DeadLetterQueueARN, err = queue(ctx, c.SQS, n.DeadLetterQueue, nil, &r); err != nil {
		return r, err
	}
	if r.StreamFailureQueueURL, r.StreamFailureQueueARN, err = queue(ctx, c.SQS, n.StreamFailureQueue, map[string]string{
		string(qtypes.QueueAttributeNameMessageRetentionPeriod): strconv.Itoa(int(resources.FailureRetention.Seconds())),
	}, &r); err != nil {
		return r, err
	}
	redrive, _ := json.Marshal(map[string]string{
		"deadLetterTargetArn": r.DeadLetterQueueARN,
		"maxReceiveCount":     strconv.Itoa(messaging.MaxReceiveCount),
	})
	if r.ProcessingQueueURL, r.ProcessingQueueARN, err = queue(ctx, c.SQS, n.ProcessingQueue, map[string]string{
		string(qtypes.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(resources.VisibilityTimeout.Seconds())),
		string(qtypes.QueueAttributeNameRedrivePolicy):     string(redrive),
	}, &r); err != nil {
		return r, err
	}
	// The queue policy lets the events topic deliver to the queue. Moto does
	// not enforce it; real SQS does.
	policy, _ := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Sid":       "events-topic-to-processing-queue",
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "sns.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  r.ProcessingQueueARN,
			"Condition": map[string]any{"ArnEquals": map[string]string{"aws:SourceArn": r.EventsTopicARN}},
		}},
	})
	if _, err = c.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(r.ProcessingQueueURL),
		Attributes: map[string]string{string(qtypes.QueueAttributeNamePolicy): string(policy)},
	}); err != nil {
		return r, fmt.Errorf("aws/bootstrap: queue policy %s: %w", n.ProcessingQueue, err)
	}
	if r.ProcessingSubscribe, err = subscribeQueue(ctx, c.SNS, r.EventsTopicARN, r.ProcessingQueueARN, ProcessingFilterPolicy(), &r); err != nil {
		return r, err
	}
	return r, nil
}

func eventsTable(ctx context.Context, db *dynamodb.Client, name string, r *Report) (string, error) {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{
			{AttributeName: aws.String("stream_id"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("version"), AttributeType: dtypes.ScalarAttributeTypeN},
		},
		KeySchema: []dtypes.KeySchemaElement{
			{AttributeName: aws.String("stream_id"), KeyType: dtypes.KeyTypeHash},
			{AttributeName: aws.String("version"), KeyType: dtypes.KeyTypeRange},
		},
		StreamSpecification: &dtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: dtypes.StreamViewType(resources.StreamViewType)},
	})
	created, err := tableCreated(err)
	if err != nil {
		return "", fmt.Errorf("aws/bootstrap: create table %s: %w", name, err)
	}
	r.note(created, name)
	desc, err := waitActive(ctx, db, name)
	if err != nil {
		return "", err
	}
	if s := desc.StreamSpecification; s == nil || !aws.ToBool(s.StreamEnabled) || string(s.StreamViewType) != resources.StreamViewType {
		if _, err := db.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:           aws.String(name),
			StreamSpecification: &dtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: dtypes.StreamViewType(resources.StreamViewType)},
		}); err != nil {
			return "", fmt.Errorf("aws/bootstrap: enable stream on %s: %w", name, err)
		}
		if desc, err = waitActive(ctx, db, name); err != nil {
			return "", err
		}
	}
	ttl, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("aws/bootstrap: describe TTL of %s: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != resources.IdempotencyTTLAttribute ||
		(d.TimeToLiveStatus != dtypes.TimeToLiveStatusEnabled && d.TimeToLiveStatus != dtypes.TimeToLiveStatusEnabling) {
		if _, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName:               aws.String(name),
			TimeToLiveSpecification: &dtypes.TimeToLiveSpecification{AttributeName: aws.String(resources.IdempotencyTTLAttribute), Enabled: aws.Bool(true)},
		}); err != nil {
			return "", fmt.Errorf("aws/bootstrap: enable TTL on %s: %w", name, err)
		}
	}
	return aws.ToString(desc.LatestStreamArn), nil
}

func ordersTable(ctx context.Context, db *dynamodb.Client, name string, r *Report) error {
	gsi := func(index, hash string) dtypes.GlobalSecondaryIndex {
		return dtypes.GlobalSecondaryIndex{
			IndexName: aws.String(index),
			KeySchema: []dtypes.KeySchemaElement{
				{AttributeName: aws.String(hash), KeyType: dtypes.KeyTypeHash},
				{AttributeName: aws.String("created_at"), KeyType: dtypes.KeyTypeRange},
			},
			Projection: &dtypes.Projection{ProjectionType: dtypes.ProjectionTypeAll},
		}
	}
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{
			{AttributeName: aws.String("order_id"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("status"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("customer_name"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("created_at"), AttributeType: dtypes.ScalarAttributeTypeS},
		},
		KeySchema: []dtypes.KeySchemaElement{{AttributeName: aws.String("order_id"), KeyType: dtypes.KeyTypeHash}},
		GlobalSecondaryIndexes: []dtypes.GlobalSecondaryIndex{
			gsi(resources.StatusIndex, "status"),
			gsi(resources.CustomerIndex, "customer_name"),
		},
	})
	created, err := tableCreated(err)
	if err != nil {
		return fmt.Errorf("aws/bootstrap: create table %s: %w", name, err)
	}
	r.note(created, name)
	_, err = waitActive(ctx, db, name)
	return err
}

func tableCreated(err error) (bool, error) {
	var inUse *dtypes.ResourceInUseException
	if errors.As(err, &inUse) {
		return false, nil
	}
	return err == nil, err
}

func waitActive(ctx context.Context, db *dynamodb.Client, name string) (*dtypes.TableDescription, error) {
	w := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = o.MinDelay / 20 })
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 5*time.Minute)
	if err != nil {
		return nil, fmt.Errorf("aws/bootstrap: wait for table %s: %w", name, err)
	}
	return out.Table, nil
}

func topic(ctx context.Context, c *sns.Client, name string, r *Report) (string, error) {
	arn, err := findTopic(ctx, c, name)
	if err != nil {
		return "", err
	}
	if arn != "" {
		r.note(false, name)
		return arn, nil
	}
	out, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("aws/bootstrap: create topic %s: %w", name, err)
	}
	r.note(true, name)
	return aws.ToString(out.TopicArn), nil
}

func findTopic(ctx context.Context, c *sns.Client, name string) (string, error) {
	p := sns.NewListTopicsPaginator(c, &sns.ListTopicsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("aws/bootstrap: list topics: %w", err)
		}
		for _, t := range page.Topics {
			if arn := aws.ToString(t.TopicArn); arnName(arn) == name {
				return arn, nil
			}
		}
	}
	return "", nil
}

// arnName returns the last ':'-separated field of an ARN.
func arnName(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == ':' {
			return arn[i+1:]
		}
	}
	return arn
}

func queue(ctx context.Context, c *sqs.Client, name string, attrs map[string]string, r *Report) (url, arn string, err error) {
	created := true
	if got, gerr := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)}); gerr == nil {
		created, url = false, aws.ToString(got.QueueUrl)
	} else {
		var missing *qtypes.QueueDoesNotExist
		if !errors.As(gerr, &missing) {
			return "", "", fmt.Errorf("aws/bootstrap: get queue %s: %w", name, gerr)
		}
		out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
		if err != nil {
			return "", "", fmt.Errorf("aws/bootstrap: create queue %s: %w", name, err)
		}
		url = aws.ToString(out.QueueUrl)
	}
	r.note(created, name)
	if !created && len(attrs) > 0 {
		if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: attrs}); err != nil {
			return "", "", fmt.Errorf("aws/bootstrap: set attributes of queue %s: %w", name, err)
		}
	}
	got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url), AttributeNames: []qtypes.QueueAttributeName{qtypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", "", fmt.Errorf("aws/bootstrap: queue ARN of %s: %w", name, err)
	}
	return url, got.Attributes[string(qtypes.QueueAttributeNameQueueArn)], nil
}

// subscribeQueue subscribes queueARN to topicARN with raw delivery and the
// filter policy, reusing an existing subscription.
func subscribeQueue(ctx context.Context, c *sns.Client, topicARN, queueARN, filter string, r *Report) (string, error) {
	var subARN string
	p := sns.NewListSubscriptionsByTopicPaginator(c, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
	for p.HasMorePages() && subARN == "" {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("aws/bootstrap: list subscriptions of %s: %w", arnName(topicARN), err)
		}
		for _, s := range page.Subscriptions {
			if aws.ToString(s.Protocol) == "sqs" && aws.ToString(s.Endpoint) == queueARN {
				subARN = aws.ToString(s.SubscriptionArn)
				break
			}
		}
	}
	name := arnName(topicARN) + " -> " + arnName(queueARN)
	r.note(subARN == "", name)
	if subARN == "" {
		out, err := c.Subscribe(ctx, &sns.SubscribeInput{
			TopicArn: aws.String(topicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(queueARN),
			Attributes:            map[string]string{"RawMessageDelivery": "true", "FilterPolicy": filter},
			ReturnSubscriptionArn: true,
		})
		if err != nil {
			return "", fmt.Errorf("aws/bootstrap: subscribe %s: %w", name, err)
		}
		return aws.ToString(out.SubscriptionArn), nil
	}
	for k, v := range map[string]string{"RawMessageDelivery": "true", "FilterPolicy": filter} {
		if _, err := c.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{
			SubscriptionArn: aws.String(subARN), AttributeName: aws.String(k), AttributeValue: aws.String(v),
		}); err != nil {
			return "", fmt.Errorf("aws/bootstrap: set %s of %s: %w", k, name, err)
		}
	}
	return subARN, nil
}

// Teardown deletes every resource of environment n, ignoring those that do
// not exist. For tests and sandboxes.
func Teardown(ctx context.Context, c awsconfig.Clients, n resources.Names) error {
	var errs []error
	for _, t := range []string{n.EventsTable, n.OrdersTable} {
		if _, err := c.DynamoDB.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(t)}); err != nil {
			var missing *dtypes.ResourceNotFoundException
			if !errors.As(err, &missing) {
				errs = append(errs, err)
			}
		}
	}
	for _, q := range []string{n.ProcessingQueue, n.DeadLetterQueue, n.StreamFailureQueue} {
		if got, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q)}); err == nil {
			if _, err := c.SQS.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: got.QueueUrl}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, t := range []string{n.EventsTopic, n.CompletedTopic} {
		arn, err := findTopic(ctx, c.SNS, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if arn != "" {
			if _, err := c.SNS.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(arn)}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("aws/bootstrap: teardown %s: %w", n.Env, err)
	}
	return nil
}

// EnsureEventsTable creates the events table name (stream NEW_IMAGE, TTL on
// the idempotency records) unless it exists, and returns its stream's ARN.
func EnsureEventsTable(ctx context.Context, db *dynamodb.Client, name string) (string, error) {
	return eventsTable(ctx, db, name, &Report{})
}

// EnsureOrdersTable creates the read table name with its indexes unless it exists.
func EnsureOrdersTable(ctx context.Context, db *dynamodb.Client, name string) error {
	return ordersTable(ctx, db, name, &Report{})
}

// Resolve finds the resources of environment n without creating anything:
// the events stream, the topics' ARNs and the queues' URLs and ARNs. It
// fails, naming the first missing resource, when the environment has not
// been bootstrapped.
func Resolve(ctx context.Context, c awsconfig.Clients, n resources.Names) (Report, error) {
	var r Report
	hint := " (run `ledger aws bootstrap` or apply the Terraform)"
	desc, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(n.EventsTable)})
	if err != nil {
		return r, fmt.Errorf("aws/bootstrap: table %s: %w%s", n.EventsTable, err, hint)
	}
	if r.EventsStreamARN = aws.ToString(desc.Table.LatestStreamArn); r.EventsStreamARN == "" {
		return r, fmt.Errorf("aws/bootstrap: table %s has no stream%s", n.EventsTable, hint)
	}
	if _, err := c.DynamoDB.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(n.OrdersTable)}); err != nil {
		return r, fmt.Errorf("aws/bootstrap: table %s: %w%s", n.OrdersTable, err, hint)
	}
	for _, t := range []struct {
		name string
		arn  *string
	}{{n.EventsTopic, &r.EventsTopicARN}, {n.CompletedTopic, &r.CompletedTopicARN}} {
		if *t.arn, err = findTopic(ctx, c.SNS, t.name); err != nil {
			return r, err
		}
		if *t.arn == "" {
			return r, fmt.Errorf("aws/bootstrap: topic %s does not exist%s", t.name, hint)
		}
	}
	for _, q := range []struct {
		name     string
		url, arn *string
	}{
		{n.ProcessingQueue, &r.ProcessingQueueURL, &r.ProcessingQueueARN},
		{n.DeadLetterQueue, &r.DeadLetterQueueURL, &r.DeadLetterQueueARN},
		{n.StreamFailureQueue, &r.StreamFailureQueueURL, &r.StreamFailureQueueARN},
	} {
		got, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.name)})
		if err != nil {
			return r, fmt.Errorf("aws/bootstrap: queue %s: %w%s", q.name, err, hint)
		}
		*q.url = aws.ToString(got.QueueUrl)
		a, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: got.QueueUrl, AttributeNames: []qtypes.QueueAttributeName{qtypes.QueueAttributeNameQueueArn}})
		if err != nil {
			return r, fmt.Errorf("aws/bootstrap: queue %s: %w", q.name, err)
		}
		*q.arn = a.Attributes[string(qtypes.QueueAttributeNameQueueArn)]
	}
	return r, nil
}
