package awsmsg_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	qtypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/awstest"
	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/awsmsg"
	"github.com/orderledger/orderledger/messaging/queuetest"
	"github.com/orderledger/orderledger/messaging/topictest"
)

func queue(t *testing.T, c awsconfig.Clients, name string, attrs map[string]string) (*awsmsg.Queue, string) {
	t.Helper()
	ctx := context.Background()
	out, err := c.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.SQS.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: out.QueueUrl}) })
	a, err := c.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: out.QueueUrl, AttributeNames: []qtypes.QueueAttributeName{qtypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	q, err := awsmsg.NewQueue(c.SQS, aws.ToString(out.QueueUrl))
	if err != nil {
		t.Fatal(err)
	}
	return q, a.Attributes["QueueArn"]
}

func TestQueueConformance(t *testing.T) {
	c := awstest.Clients(t)
	queuetest.Run(t, queuetest.Features{VisibilityTimeout: time.Second, AtLeastOnce: true}, func(t *testing.T) (messaging.Queue, messaging.Queue) {
		env := awstest.UniqueEnv()
		dlq, dlqARN := queue(t, c, env+"-dlq", nil)
		redrive, _ := json.Marshal(map[string]string{"deadLetterTargetArn": dlqARN, "maxReceiveCount": fmt.Sprint(messaging.MaxReceiveCount)})
		q, _ := queue(t, c, env+"-q", map[string]string{"VisibilityTimeout": "1", "RedrivePolicy": string(redrive)})
		return q, dlq
	})
}

func TestTopicConformance(t *testing.T) {
	c := awstest.Clients(t)
	topictest.Run(t, topictest.Features{Filters: true}, func(t *testing.T, filters []messaging.Filter) (messaging.Topic, []messaging.Queue) {
		ctx := context.Background()
		env := awstest.UniqueEnv()
		out, err := c.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(env + "-topic")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = c.SNS.DeleteTopic(context.Background(), &sns.DeleteTopicInput{TopicArn: out.TopicArn}) })
		var queues []messaging.Queue
		for i, f := range filters {
			q, arn := queue(t, c, fmt.Sprintf("%s-q%d", env, i), nil)
			attrs := map[string]string{"RawMessageDelivery": "true"}
			if f != nil {
				b, _ := json.Marshal(f)
				attrs["FilterPolicy"] = string(b)
			}
			if _, err := c.SNS.Subscribe(ctx, &sns.SubscribeInput{TopicArn: out.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(arn), Attributes: attrs}); err != nil {
				t.Fatal(err)
			}
			queues = append(queues, q)
		}
		topic, err := awsmsg.NewTopic(c.SNS, aws.ToString(out.TopicArn))
		if err != nil {
			t.Fatal(err)
		}
		return topic, queues
	})
}
