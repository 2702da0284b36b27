// Package dynamostore is the event store on Amazon DynamoDB: one item per event
// in a table keyed by stream_id (partition) and version (sort), appended
// with conditional writes so that a stream's versions stay 1..n without gaps
// or doubles. It has no global feed: consumers read the table's DynamoDB
// stream instead (DecodeStreamRecord). See README.md for the key design.
//
// When DynamoDB cannot be reached, throttles or fails on its side, the
// error has code domain.Unavailable (HTTP 503: retry later), never
// Internal; the SDK's own error stays in the chain.
package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
)

// Limits of one append, from DynamoDB's: an item is at most 400 KB and a
// transaction holds at most 100 items (one is the idempotency record, one
// the version check).
const (
	MaxIDLen           = 1024
	MaxEventsPerAppend = 98
	MaxItemSize        = 400 * 1024
	// DefaultIdempotencyTTL is how long an idempotency key is remembered.
	DefaultIdempotencyTTL = 7 * 24 * time.Hour
	// knownCap bounds the cache of stream versions known to exist.
	knownCap = 10000
)

// Item attribute names. They are stored forever.
const (
	attrStream        = "stream_id"
	attrVersion       = "version"
	attrEventID       = "event_id"
	attrType          = "type"
	attrSchemaVersion = "schema_version"
	attrOccurredAt    = "occurred_at"
	attrData          = "data"
	attrCorrelationID = "correlation_id"
	attrCausationID   = "causation_id"
	attrRequestID     = "request_id"
	attrTraceParent   = "traceparent"
	// The audit chain (eventstore.Event.PrevHash and Hash): 32 bytes each,
	// binary (B). Both absent on an event stored before the chain and not
	// yet migrated; prev_hash is absent on version 1.
	attrPrevHash = "prev_hash"
	attrHash     = "hash"
	// Idempotency records (version 0 of the pseudo-stream "idempotency#"+key).
	attrResultStream  = "result_stream_id"
	attrResultVersion = "result_version"
	idempotencyPrefix = "idempotency#"
)

// Options tune a Store.
type Options struct {
	// IdempotencyTTL is how long keys are remembered (DefaultIdempotencyTTL
	// when zero); DynamoDB's TTL deletes the record afterwards.
	IdempotencyTTL time.Duration
	// Clock stamps idempotency records' expiry (domain.SystemClock when nil).
	Clock domain.Clock
}

// Store is the DynamoDB event store. Safe for concurrent use.
type Store struct {
	db    *dynamodb.Client
	table string
	ttl   time.Duration
	clock domain.Clock

	mu sync.Mutex
	// known maps a stream to a version known to exist and, when known, that
	// event's hash. Versions are never deleted, so a version once seen
	// exists forever: an append at that expected version needs no read to
	// prove there is no gap, nor to learn the hash it chains to.
	known map[string]knownHead
}

type knownHead struct {
	version int64
	hash    eventstore.Hash // zero: not known (or not hashed)
}

var _ eventstore.Store = (*Store)(nil)

// New returns the store over table (see resources.Names.EventsTable).
func New(db *dynamodb.Client, table string, o Options) (*Store, error) {
	if db == nil || table == "" {
		return nil, errors.New("eventstore/dynamostore: new: a DynamoDB client and a table name are required")
	}
	if o.IdempotencyTTL <= 0 {
		o.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if o.Clock == nil {
		o.Clock = domain.SystemClock
	}
	return &Store{db: db, table: table, ttl: o.IdempotencyTTL, clock: o.Clock, known: map[string]knownHead{}}, nil
}

// Append implements eventstore.Store: one conditional PutItem for a single
// event, one TransactWriteItems for several.
func (s *Store) Append(ctx context.Context, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	if err := s.validate(streamID, expected, events); err != nil {
		return eventstore.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.Result{}, fmt.Errorf("eventstore/dynamostore: append: %w", err)
	}
	items, last, taken, err := s.prepare(ctx, streamID, expected, events)
	if err != nil {
		return eventstore.Result{}, err
	}
	res := eventstore.Result{StreamID: streamID, Version: expected + int64(len(events))}
	switch taken {
	case slotTaken:
		return s.staleAppend(ctx, streamID, expected, items[0], res)
	case slotGap:
		return eventstore.Result{}, s.conflict(ctx, streamID, expected)
	}
	if len(items) == 1 {
		if err := s.appendOne(ctx, streamID, expected, items[0]); err != nil {
			return eventstore.Result{}, err
		}
		s.remember(streamID, res.Version, last)
		return res, nil
	}
	if _, err := s.transact(ctx, "", streamID, expected, items); err != nil {
		return eventstore.Result{}, err
	}
	s.remember(streamID, res.Version, last)
	return res, nil
}

// staleAppend answers an append whose expected version is older than one
// the store has seen: version expected+1 exists, so nothing is written. It
// is a conflict, unless that event is the one appended (a retry of an
// append that succeeded).
func (s *Store) staleAppend(ctx context.Context, stream string, expected int64, first map[string]types.AttributeValue, res eventstore.Result) (eventstore.Result, error) {
	ours, err := s.holds(ctx, nil, stream, expected+1, first)
	if err != nil {
		return eventstore.Result{}, err
	}
	if ours {
		return res, nil
	}
	return eventstore.Result{}, s.conflict(ctx, stream, expected)
}

// AppendIdempotent implements eventstore.Store: the key's record and the
// events are written in one TransactWriteItems, so either both or neither
// exist.
func (s *Store) AppendIdempotent(ctx context.Context, key, streamID string, expected int64, events ...eventstore.Event) (eventstore.Result, error) {
	if key == "" || len(key) > MaxIDLen || !utf8.ValidString(key) {
		return eventstore.Result{}, invalid("idempotency key must be 1..%d bytes of UTF-8", MaxIDLen)
	}
	if err := s.validate(streamID, expected, events); err != nil {
		return eventstore.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return eventstore.Result{}, fmt.Errorf("eventstore/dynamostore: append: %w", err)
	}
	items, last, taken, err := s.prepare(ctx, streamID, expected, events)
	if err != nil {
		return eventstore.Result{}, err
	}
	if taken != slotFree {
		// Nothing can be written; a used key still answers its result.
		if dup, ok, err := s.duplicate(ctx, key); err != nil || ok {
			return dup, err
		}
		return eventstore.Result{}, s.conflict(ctx, streamID, expected)
	}
	res, err := s.transact(ctx, key, streamID, expected, items)
	if err != nil {
		return eventstore.Result{}, err
	}
	if !res.Duplicate {
		s.remember(streamID, res.Version, last)
	}
	return res, nil
}

func invalid(format string, args ...any) error {
	return domain.Errorf(domain.Invalid, "eventstore/dynamostore: append: "+format, args...)
}

// limits are DynamoDB's bounds on one append (versions stay exact in a
// DynamoDB number read as float64 by other tools: at most 2^53).
var limits = eventstore.Limits{MaxIDLen: MaxIDLen, MaxEvents: MaxEventsPerAppend, MaxVersion: 1 << 53}

// validate checks an append's input.
func (s *Store) validate(stream string, expected int64, events []eventstore.Event) error {
	if err := eventstore.ValidateAppend("eventstore/dynamostore: append", stream, expected, events, limits); err != nil {
		return err
	}
	for i, e := range events {
		e.StreamID, e.Version = stream, expected+int64(i)+1
		e.Hash, e.PrevHash = eventstore.Hash{1}, eventstore.Hash{1} // sized as stored
		if n := itemSize(Item(e)); n > MaxItemSize {
			return invalid("event %d: %d bytes stored (at most %d)", i, n, MaxItemSize)
		}
	}
	return nil
}

// slot says whether an append can be written at its expected version.
type slot int

const (
	slotFree  slot = iota // as far as the store knows: the puts' conditions decide
	slotTaken             // version expected+1 is known to exist
	slotGap               // version expected does not exist
)

// prepare returns the events' items, chained to the hash of version
// expected (the cached one, or read with one consistent GetItem), and the
// last one's hash. When version expected is unhashed (stored before the
// chain, not migrated yet), the items are not hashed either, so that
// unhashed events are always a stream's tail (see Migrate).
func (s *Store) prepare(ctx context.Context, stream string, expected int64, events []eventstore.Event) ([]map[string]types.AttributeValue, eventstore.Hash, slot, error) {
	var prev eventstore.Hash
	chained := true
	taken := slotFree
	if expected > 0 {
		k := s.knownHead(stream)
		switch {
		case k.version == expected && !k.hash.IsZero():
			prev = k.hash
		case k.version > expected:
			taken = slotTaken
		default:
			h, found, err := s.readHash(ctx, stream, expected)
			if err != nil {
				return nil, prev, taken, err
			}
			if !found {
				taken = slotGap
			}
			prev, chained = h, !h.IsZero()
		}
	}
	items := make([]map[string]types.AttributeValue, len(events))
	for i, e := range events {
		e.StreamID, e.Version = stream, expected+int64(i)+1
		if len(e.Data) == 0 {
			e.Data = json.RawMessage("{}") // as stored, and so as hashed
		}
		if chained {
			e.PrevHash, e.Hash = prev, eventstore.EventHash(&e, prev)
			prev = e.Hash
		}
		items[i] = Item(e)
	}
	return items, prev, taken, nil
}

// readHash reads the hash of (stream, version) with one consistent GetItem.
func (s *Store) readHash(ctx context.Context, stream string, version int64) (eventstore.Hash, bool, error) {
	var h eventstore.Hash
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(stream, version), ConsistentRead: aws.Bool(true),
		ProjectionExpression:     aws.String("#v, #h"),
		ExpressionAttributeNames: map[string]string{"#v": attrVersion, "#h": attrHash},
	})
	if err != nil {
		return h, false, fmt.Errorf("eventstore/dynamostore: append: read version %d: %w", version, awsconfig.MarkUnavailable(err))
	}
	if len(out.Item) == 0 {
		return h, false, nil
	}
	if b, ok := out.Item[attrHash].(*types.AttributeValueMemberB); ok && len(b.Value) == eventstore.HashSize {
		h = eventstore.Hash(b.Value)
	}
	s.remember(stream, version, h)
	return h, true, nil
}

func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value)
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		}
	}
	return n
}

// Item returns the stored item of e (StreamID and Version set).
func Item(e eventstore.Event) map[string]types.AttributeValue {
	data := string(e.Data)
	if data == "" {
		data = "{}"
	}
	item := map[string]types.AttributeValue{
		attrStream:        &types.AttributeValueMemberS{Value: e.StreamID},
		attrVersion:       num(e.Version),
		attrEventID:       &types.AttributeValueMemberS{Value: e.EventID},
		attrType:          &types.AttributeValueMemberS{Value: e.Type},
		attrSchemaVersion: num(int64(e.SchemaVersion)),
		attrOccurredAt:    &types.AttributeValueMemberS{Value: e.OccurredAt.UTC().Format(time.RFC3339Nano)},
		attrData:          &types.AttributeValueMemberS{Value: data},
	}
	for k, v := range map[string]string{attrCorrelationID: e.Metadata.CorrelationID, attrCausationID: e.Metadata.CausationID, attrRequestID: e.Metadata.RequestID, attrTraceParent: e.Metadata.TraceParent} {
		if v != "" {
			item[k] = &types.AttributeValueMemberS{Value: v}
		}
	}
	if !e.Hash.IsZero() {
		item[attrHash] = &types.AttributeValueMemberB{Value: e.Hash[:]}
		if !e.PrevHash.IsZero() {
			item[attrPrevHash] = &types.AttributeValueMemberB{Value: e.PrevHash[:]}
		}
	}
	return item
}

func num(n int64) *types.AttributeValueMemberN {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func key(stream string, version int64) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrStream: &types.AttributeValueMemberS{Value: stream}, attrVersion: num(version)}
}

// notExists is the condition of every put: the slot is free.
var notExists = aws.String("attribute_not_exists(" + attrStream + ")")

// appendOne writes one event with a single conditional PutItem. The put's
// condition proves version expected+1 is free; that version expected exists
// was proved by prepare, from the cache or one consistent read (existence
// is permanent, so there is no race between the two).
func (s *Store) appendOne(ctx context.Context, stream string, expected int64, item map[string]types.AttributeValue) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table), Item: item, ConditionExpression: notExists,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		// The SDK retries a put whose response was lost; the retry then
		// finds the event it wrote itself. That is success, not a conflict.
		if ours, err := s.holds(ctx, ccf.Item, stream, expected+1, item); err != nil || ours {
			return err
		}
		return s.conflict(ctx, stream, expected)
	}
	if err != nil {
		return fmt.Errorf("eventstore/dynamostore: append: %w", awsconfig.MarkUnavailable(err))
	}
	return nil
}

// transact writes the events (and the key's record when key is set) in one
// TransactWriteItems.
func (s *Store) transact(ctx context.Context, idemKey, stream string, expected int64, items []map[string]types.AttributeValue) (eventstore.Result, error) {
	res := eventstore.Result{StreamID: stream, Version: expected + int64(len(items))}
	var tx []types.TransactWriteItem
	if idemKey != "" {
		rec := key(idempotencyPrefix+idemKey, 0)
		rec[attrResultStream] = &types.AttributeValueMemberS{Value: stream}
		rec[attrResultVersion] = num(res.Version)
		rec[resources.IdempotencyTTLAttribute] = num(s.clock().Add(s.ttl).Unix())
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: rec, ConditionExpression: notExists}})
	}
	for _, it := range items {
		tx = append(tx, types.TransactWriteItem{Put: &types.Put{TableName: aws.String(s.table), Item: it, ConditionExpression: notExists}})
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			break
		}
		retry := false
		for i, r := range tce.CancellationReasons {
			switch aws.ToString(r.Code) {
			case "ConditionalCheckFailed":
				if i == 0 && idemKey != "" {
					if dup, ok, err := s.duplicate(ctx, idemKey); err != nil || ok {
						return dup, err
					}
				}
				// A retried transaction whose first attempt committed
				// (normally the client request token prevents that).
				if ours, err := s.holds(ctx, nil, stream, expected+1, items[0]); err != nil || ours {
					if err != nil {
						return eventstore.Result{}, err
					}
					return res, nil
				}
				return eventstore.Result{}, s.conflict(ctx, stream, expected)
			case "TransactionConflict":
				retry = true
			}
		}
		if !retry {
			break
		}
	}
	if err != nil {
		return eventstore.Result{}, fmt.Errorf("eventstore/dynamostore: append: %w", awsconfig.MarkUnavailable(err))
	}
	return res, nil
}

// duplicate returns the original result of key, if its record exists.
func (s *Store) duplicate(ctx context.Context, idemKey string) (eventstore.Result, bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(idempotencyPrefix+idemKey, 0), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return eventstore.Result{}, false, fmt.Errorf("eventstore/dynamostore: append: read idempotency record: %w", awsconfig.MarkUnavailable(err))
	}
	if len(out.Item) == 0 {
		return eventstore.Result{}, false, nil
	}
	st, _ := out.Item[attrResultStream].(*types.AttributeValueMemberS)
	v, _ := out.Item[attrResultVersion].(*types.AttributeValueMemberN)
	if st == nil || v == nil {
		return eventstore.Result{}, false, fmt.Errorf("eventstore/dynamostore: append: idempotency record of %q is malformed", idemKey)
	}
	version, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return eventstore.Result{}, false, fmt.Errorf("eventstore/dynamostore: append: idempotency record of %q: %w", idemKey, err)
	}
	return eventstore.Result{StreamID: st.Value, Version: version, Duplicate: true}, true, nil
}

// conflict reads the stream's actual version and returns the conflict.
func (s *Store) conflict(ctx context.Context, stream string, expected int64) error {
	actual, err := s.head(ctx, stream)
	if err != nil {
		return err
	}
	s.remember(stream, actual, eventstore.Hash{})
	return &eventstore.ConflictError{StreamID: stream, Expected: expected, Actual: actual}
}

// head returns the stream's last version with one consistent Query.
func (s *Store) head(ctx context.Context, stream string) (int64, error) {
	out, err := s.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#s = :s AND #v >= :one"),
		ExpressionAttributeNames:  map[string]string{"#s": attrStream, "#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: stream}, ":one": num(1)},
		ProjectionExpression:      aws.String("#v"),
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return 0, fmt.Errorf("eventstore/dynamostore: read stream head: %w", awsconfig.MarkUnavailable(err))
	}
	if len(out.Items) == 0 {
		return 0, nil
	}
	v, ok := out.Items[0][attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("eventstore/dynamostore: stream %s: version is not a number", stream)
	}
	return strconv.ParseInt(v.Value, 10, 64)
}

// Load implements eventstore.Store with consistent reads, following
// LastEvaluatedKey through every page.
func (s *Store) Load(ctx context.Context, streamID string, from int64) ([]eventstore.Event, error) {
	from = max(from, 1)
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		KeyConditionExpression:    aws.String("#s = :s AND #v >= :from"),
		ExpressionAttributeNames:  map[string]string{"#s": attrStream, "#v": attrVersion},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberS{Value: streamID}, ":from": num(from)},
		ConsistentRead:            aws.Bool(true),
	}
	var out []eventstore.Event
	p := dynamodb.NewQueryPaginator(s.db, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("eventstore/dynamostore: load %s: %w", streamID, awsconfig.MarkUnavailable(err))
		}
		for _, it := range page.Items {
			e, ok, err := DecodeItem(it)
			if err != nil {
				return nil, fmt.Errorf("eventstore/dynamostore: load %s: %w", streamID, err)
			}
			if ok {
				out = append(out, e)
			}
		}
	}
	if n := len(out); n > 0 {
		s.remember(streamID, out[n-1].Version, out[n-1].Hash)
	}
	return out, nil
}

func (s *Store) knownHead(stream string) knownHead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known[stream]
}

// remember records that version exists, with its hash when h is not zero.
func (s *Store) remember(stream string, version int64, h eventstore.Hash) {
	if version <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.known[stream]
	if !ok && len(s.known) >= knownCap {
		clear(s.known)
	}
	switch {
	case version > cur.version:
		s.known[stream] = knownHead{version: version, hash: h}
	case version == cur.version && !h.IsZero():
		s.known[stream] = knownHead{version: version, hash: h}
	}
}

// holds reports whether the item at (stream, version) is the event item
// (same event ID). old is the stored item when the failed condition
// returned it; otherwise it is read.
func (s *Store) holds(ctx context.Context, old map[string]types.AttributeValue, stream string, version int64, item map[string]types.AttributeValue) (bool, error) {
	if len(old) == 0 {
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: aws.String(s.table), Key: key(stream, version), ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String(attrEventID),
		})
		if err != nil {
			return false, fmt.Errorf("eventstore/dynamostore: append: check own write: %w", awsconfig.MarkUnavailable(err))
		}
		old = out.Item
	}
	got, ok1 := old[attrEventID].(*types.AttributeValueMemberS)
	want, ok2 := item[attrEventID].(*types.AttributeValueMemberS)
	return ok1 && ok2 && got.Value == want.Value, nil
}
