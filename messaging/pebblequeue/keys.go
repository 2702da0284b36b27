package pebblequeue

import "encoding/binary"

// record is a stored message.
type record struct {
	ID           string            `json:"id"`
	Body         []byte            `json:"body"`
	Attributes   map[string]string `json:"attributes,omitempty"`
	ReceiveCount int               `json:"receive_count"`
	VisibleAt    int64             `json:"visible_at"` // unix ns
	SentAt       int64             `json:"sent_at"`    // unix ns
	// DeadLetteredFrom is the queue the message was dead-lettered from.
	DeadLetteredFrom string `json:"dead_lettered_from,omitempty"`
	// DeadReceiveCount is the receive count it had there.
	DeadReceiveCount int `json:"dead_receive_count,omitempty"`
	// Returned is set when the receiver handed the message back with
	// ChangeVisibility (a finished, failed attempt) and cleared on receive.
	Returned bool `json:"returned,omitempty"`
	// Forgiven is set once a receive cut off by a crash has been uncounted
	// (see releaseInFlight); it is forgiven only once per message.
	Forgiven bool `json:"forgiven,omitempty"`
}

func msgKey(queue, id string) []byte { return []byte("m\x00" + queue + "\x00" + id) }

func msgPrefix(queue string) []byte { return []byte("m\x00" + queue + "\x00") }

func visPrefix(queue string) []byte { return []byte("v\x00" + queue + "\x00") }

func visKey(queue string, at int64, id string) []byte {
	k := visPrefix(queue)
	k = binary.BigEndian.AppendUint64(k, uint64(max(at, 0)))
	return append(k, id...)
}
