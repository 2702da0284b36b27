package telemetry

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/orderledger/orderledger/eventstore"
)

// EMFNamespace is the CloudWatch namespace of the metrics the Lambdas emit
// in Embedded Metric Format (the monitoring module's metrics_namespace).
const EMFNamespace = "orderledger"

// EMFStore returns s with every accepted append written to w as CloudWatch
// Embedded Metric Format lines: metric EventsAppended (Count), one line per
// event type of the append, with dimensions Environment (env) and EventType.
// It is ledger_events_appended_total for the Lambdas, where a log line on
// stdout is the metric: CloudWatch Logs extracts it, with no API call and
// nothing to flush. Like the Prometheus counter it counts only appends the
// store accepted: a conflict, an error or an idempotent replay writes
// nothing. Loads and the rest pass through.
//
// The format is AWS's published specification (a JSON object with an "_aws"
// member naming the namespace, dimension sets and metrics, and the values as
// top-level members); AWS ships no Go library for it, and the few lines
// here are all of it.
func EMFStore(s eventstore.Store, w io.Writer, env string) eventstore.Store {
	return &emfStore{Store: s, w: w, env: env, now: time.Now}
}

type emfStore struct {
	eventstore.Store
	mu  sync.Mutex
	w   io.Writer
	env string
	now func() time.Time
}

func (s *emfStore) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	res, err := s.Store.Append(ctx, streamID, expected, events...)
	if err == nil {
		s.emit(events)
	}
	return res, err
}

func (s *emfStore) AppendIdempotent(ctx context.Context, key, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	res, err := s.Store.AppendIdempotent(ctx, key, streamID, expected, events...)
	if err == nil && !res.Duplicate {
		s.emit(events)
	}
	return res, err
}

// emfLine is one EMF document: the metadata and the members it names.
type emfLine struct {
	AWS struct {
		Timestamp         int64          `json:"Timestamp"`
		CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
	} `json:"_aws"`
	Environment    string `json:"Environment"`
	EventType      string `json:"EventType"`
	EventsAppended int    `json:"EventsAppended"`
}

// emfDirective says which members are metrics, and their dimensions.
type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

func (s *emfStore) emit(events []eventstore.Event) {
	counts := map[string]int{}
	var types []string
	for _, e := range events {
		if counts[e.Type] == 0 {
			types = append(types, e.Type)
		}
		counts[e.Type]++
	}
	at := s.now().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range types {
		var l emfLine
		l.AWS.Timestamp = at
		l.AWS.CloudWatchMetrics = []emfDirective{{Namespace: EMFNamespace, Dimensions: [][]string{{"Environment", "EventType"}},
			Metrics: []emfMetric{{Name: "EventsAppended", Unit: "Count"}}}}
		l.Environment, l.EventType, l.EventsAppended = s.env, t, counts[t]
		b, err := json.Marshal(l)
		if err != nil {
			continue // cannot happen: every member is a string or a number
		}
		_, _ = s.w.Write(append(b, '\n'))
	}
}
