package api

// GET /feed: the ledger's change feed as Server-Sent Events.
//
// Guarantees (embedded backend, where the event store has a global feed):
//   - Events are sent in the ledger's commit order (feed positions
//     ascending, gap-free before the stream filter), each as one SSE event
//     whose id is its feed position.
//   - A stream starts after a position: the Last-Event-ID header (what a
//     reconnecting EventSource sends) or else ?from=N; N = 0 (the default)
//     is the start of the log and ?from=now is the current head. Every event
//     with a position greater than it is sent, so a client that reconnects
//     with the last id it received resumes exactly where it left off.
//   - Delivery is at least once: a client that saves its position after
//     handling an event and reconnects with the saved one sees the events
//     after it again if it crashed before saving; it de-duplicates by
//     event_id (or position).
//   - ?stream=ID sends only the events of that order; ids stay global feed
//     positions, so resuming works the same way. The filter runs over the
//     global feed: a resume from an old position reads every event since.
//   - An idle stream sends a comment line every Heartbeat so that proxies
//     and load balancers keep it open; a client treats it as nothing.
//   - The stream ends when the client goes, and when the server begins to
//     drain (FeedStop), so a shutdown never waits for a subscriber.
//
// A position that is not a number, or is past the head, is a 400 problem
// (before the stream starts). Without a feed (the AWS backend, where
// DynamoDB has no global order) the route answers 501: follow the
// order-events SNS topic there, or poll GET /orders/{id}/events.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
)

// DefaultHeartbeat is how often an idle /feed stream sends a comment line.
const DefaultHeartbeat = 15 * time.Second

// feedBatch is how many events are read from the feed at once.
const feedBatch = 256

// feedWriteSlack is how long one write to a /feed stream may take; the
// server's WriteTimeout bounds whole answers and would cut a long stream.
const feedWriteSlack = 30 * time.Second

// FeedEvent is the data of one /feed event: the stored envelope, with Data
// in today's schema (as GET /orders/{id}/events shows it).
type FeedEvent struct {
	Position      uint64              `json:"position"`
	OrderID       string              `json:"order_id"`
	Version       int64               `json:"version"`
	Type          string              `json:"type"`
	EventID       string              `json:"event_id"`
	OccurredAt    time.Time           `json:"occurred_at"`
	Data          json.RawMessage     `json:"data"`
	Metadata      eventstore.Metadata `json:"metadata"`
	SchemaVersion int                 `json:"schema_version"`
}

func (s *server) feed(w http.ResponseWriter, r *http.Request) {
	if s.Feed == nil {
		s.writeError(w, r, fmt.Errorf("api: feed: %w", errNoFeed))
		return
	}
	ctx := r.Context()
	head, err := s.Feed.Head(ctx)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("api: feed: head: %w", err))
		return
	}
	after, err := feedStart(r, head)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	stream := r.URL.Query().Get("stream")

	rc := http.NewResponseController(w)
	// The stream outlives the server's read and write timeouts: no read
	// deadline (the request has no body), and a write deadline per write.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if s.FeedStop != nil {
		go func() {
			select {
			case <-s.FeedStop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	beat := s.Heartbeat
	if beat <= 0 {
		beat = DefaultHeartbeat
	}
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(feedWriteSlack))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The reconnection delay a client waits, and a first line so that the
	// client sees the stream open at once.
	if !write([]byte("retry: 1000\n: position " + strconv.FormatUint(after, 10) + "\n\n")) {
		return
	}
	// heartbeat is a comment; when the stream filter skipped events since
	// the last id sent, it carries an id too, so that a client resumes
	// after them (an event with an id and no data moves the client's last
	// event ID without being dispatched).
	sent, lastWrite := after, time.Now()
	heartbeat := func() bool {
		b := []byte(": heartbeat\n")
		if after > sent {
			b = append(append(append(b, "id: "...), strconv.FormatUint(after, 10)...), '\n')
			sent = after
		}
		lastWrite = time.Now()
		return write(append(b, '\n'))
	}
	var buf []byte
	for ctx.Err() == nil {
		evs, err := s.Feed.ReadFeed(ctx, after, feedBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.ErrorContext(ctx, "feed: read failed", "request_id", RequestID(ctx), "after", after, "error", err.Error())
			}
			return // the client reconnects with its last id
		}
		if len(evs) == 0 {
			wctx, wcancel := context.WithTimeout(ctx, beat)
			err := s.Feed.WaitFeed(wctx, after)
			wcancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				s.log.ErrorContext(ctx, "feed: wait failed", "request_id", RequestID(ctx), "error", err.Error())
				return
			}
			if err != nil && !heartbeat() {
				return
			}
			continue
		}
		buf = buf[:0]
		last := sent
		for _, env := range evs {
			after = env.Position
			if stream != "" && env.StreamID != stream {
				continue
			}
			if buf, err = s.appendFeedEvent(buf, env); err != nil {
				s.log.ErrorContext(ctx, "feed: encode failed", "request_id", RequestID(ctx), "position", env.Position, "error", err.Error())
				return
			}
			last = env.Position
		}
		switch {
		case len(buf) > 0:
			if !write(buf) {
				return
			}
			sent, lastWrite = last, time.Now()
		case time.Since(lastWrite) >= beat:
			if !heartbeat() {
				return
			}
		}
	}
}

// appendFeedEvent appends env as one SSE event to buf.
func (s *server) appendFeedEvent(buf []byte, env eventstore.Event) ([]byte, error) {
	data := env.Data
	if e, err := s.Codec.Decode(env); err == nil {
		if b, err := json.Marshal(e); err == nil {
			data = b
		}
	} // an event the codec cannot read is sent as stored
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	b, err := json.Marshal(FeedEvent{
		Position: env.Position, OrderID: env.StreamID, Version: env.Version, Type: env.Type,
		EventID: env.EventID, OccurredAt: env.OccurredAt.UTC(), Data: data, Metadata: env.Metadata,
		SchemaVersion: env.SchemaVersion,
	})
	if err != nil {
		return buf, err
	}
	buf = append(buf, "id: "...)
	buf = strconv.AppendUint(buf, env.Position, 10)
	buf = append(buf, "\nevent: "...)
	buf = append(buf, env.Type...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, b...) // compact JSON: no newline inside
	return append(buf, "\n\n"...), nil
}

var errNoFeed = domain.Errorf(codeNotImplemented,
	"this backend has no global change feed (no global order): follow the order-events topic, or poll GET /orders/{id}/events")

// feedStart is the position after which a stream starts: Last-Event-ID,
// else ?from= ("now" is the head), else 0.
func feedStart(r *http.Request, head uint64) (uint64, error) {
	field, v := "Last-Event-ID", strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		field, v = "from", strings.TrimSpace(r.URL.Query().Get("from"))
	}
	switch v {
	case "":
		return 0, nil
	case "now":
		if field == "from" {
			return head, nil
		}
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, malformed(field, "a feed position is a whole number from 0 (or from=now), not %q", v)
	}
	if n > head {
		return 0, malformed(field, "position %d is past the head of the feed (%d)", n, head)
	}
	return n, nil
}
