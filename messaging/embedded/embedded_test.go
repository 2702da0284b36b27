package embedded_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderledger/orderledger/messaging"
	"github.com/orderledger/orderledger/messaging/embedded"
	"github.com/orderledger/orderledger/messaging/queuetest"
	"github.com/orderledger/orderledger/messaging/topictest"
)

func openBroker(t *testing.T) *embedded.Broker {
	t.Helper()
	b, err := embedded.Open(t.TempDir(), embedded.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestQueueConformance(t *testing.T) {
	t.Parallel()
	b := openBroker(t)
	var n atomic.Int64
	queuetest.Run(t, queuetest.Features{VisibilityTimeout: time.Second}, func(t *testing.T) (messaging.Queue, messaging.Queue) {
		i := n.Add(1)
		dlq, err := b.Queue(fmt.Sprint("dlq-", i), embedded.QueueConfig{})
		if err != nil {
			t.Fatal(err)
		}
		q, err := b.Queue(fmt.Sprint("q-", i), embedded.QueueConfig{VisibilityTimeout: time.Second, DeadLetter: dlq})
		if err != nil {
			t.Fatal(err)
		}
		return q, dlq
	})
}

func TestTopicConformance(t *testing.T) {
	t.Parallel()
	b := openBroker(t)
	var n atomic.Int64
	topictest.Run(t, topictest.Features{Filters: true}, func(t *testing.T, filters []messaging.Filter) (messaging.Topic, []messaging.Queue) {
		i := n.Add(1)
		topic, err := b.Topic(fmt.Sprint("t-", i))
		if err != nil {
			t.Fatal(err)
		}
		var qs []messaging.Queue
		for j, f := range filters {
			q, err := b.Queue(fmt.Sprintf("t-%d-q-%d", i, j), embedded.QueueConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if err := topic.Subscribe(q, f); err != nil {
				t.Fatal(err)
			}
			qs = append(qs, q)
		}
		return topic, qs
	})
}
