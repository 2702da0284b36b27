package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/awsconfig"
	"github.com/orderledger/orderledger/internal/resources"
)

// ScanKey is a position in a scan of the events table: the key of an item
// (a stream and a version). A scan started after it returns the items that
// follow it in its segment. It is plain data, so a caller can store it and
// resume a scan after a restart.
type ScanKey struct {
	StreamID string `json:"stream_id"`
	Version  int64  `json:"version"`
}

// ScanPage is one page of a segment scan.
type ScanPage struct {
	// Events are the page's events, in the table's order: the events of one
	// stream are contiguous and in version order within a segment (DynamoDB
	// keeps a partition's items together, sorted by version; every item of
	// one stream falls in the same segment).
	Events []eventstore.Event
	// Items is how many items the page read, events and bookkeeping records
	// (idempotency records, checkpoints) alike.
	Items int
	// Next is where the next page starts; nil when the segment is done.
	Next *ScanKey
}

// TableStats is DynamoDB's own estimate of the events table's size
// (DescribeTable: updated about every six hours on real DynamoDB).
type TableStats struct {
	Items int64
	Bytes int64
}

// Stats returns the table's approximate item count and size, from which a
// caller sizes a parallel scan.
func (s *Store) Stats(ctx context.Context) (TableStats, error) {
	out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
	if err != nil {
		return TableStats{}, fmt.Errorf("eventstore/dynamostore: describe %s: %w", s.table, awsconfig.MarkUnavailable(err))
	}
	return TableStats{Items: aws.ToInt64(out.Table.ItemCount), Bytes: aws.ToInt64(out.Table.TableSizeBytes)}, nil
}

// ScanSegment reads one page (at most limit items; DynamoDB's 1 MB when
// limit is 0) of segment of total in a parallel Scan of the whole table,
// starting after after (nil: the segment's beginning). Reads are strongly
// consistent. Idempotency records and checkpoints are counted in Items and
// left out of Events.
func (s *Store) ScanSegment(ctx context.Context, segment, total int, after *ScanKey, limit int) (ScanPage, error) {
	if total < 1 || total > 1_000_000 || segment < 0 || segment >= total || limit < 0 {
		return ScanPage{}, fmt.Errorf("eventstore/dynamostore: scan: segment %d of %d (limit %d) is out of range", segment, total, limit)
	}
	in := &dynamodb.ScanInput{
		TableName:      aws.String(s.table),
		Segment:        aws.Int32(int32(segment)),
		TotalSegments:  aws.Int32(int32(total)),
		ConsistentRead: aws.Bool(true),
	}
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1<<30)))
	}
	if after != nil {
		in.ExclusiveStartKey = key(after.StreamID, after.Version)
	}
	out, err := s.db.Scan(ctx, in)
	if err != nil {
		return ScanPage{}, fmt.Errorf("eventstore/dynamostore: scan segment %d of %d: %w", segment, total, awsconfig.MarkUnavailable(err))
	}
	page := ScanPage{Items: len(out.Items)}
	for _, it := range out.Items {
		e, ok, err := DecodeItem(it)
		if err != nil {
			return ScanPage{}, fmt.Errorf("eventstore/dynamostore: scan segment %d of %d: %w", segment, total, err)
		}
		if ok {
			page.Events = append(page.Events, e)
		}
	}
	if len(out.LastEvaluatedKey) > 0 {
		next, err := scanKey(out.LastEvaluatedKey)
		if err != nil {
			return ScanPage{}, fmt.Errorf("eventstore/dynamostore: scan segment %d of %d: %w", segment, total, err)
		}
		page.Next = &next
	}
	return page, nil
}

func scanKey(k map[string]types.AttributeValue) (ScanKey, error) {
	st, ok1 := k[attrStream].(*types.AttributeValueMemberS)
	v, ok2 := k[attrVersion].(*types.AttributeValueMemberN)
	if !ok1 || !ok2 {
		return ScanKey{}, errors.New("LastEvaluatedKey is not a stream_id and version")
	}
	version, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return ScanKey{}, fmt.Errorf("LastEvaluatedKey version %q: %w", v.Value, err)
	}
	return ScanKey{StreamID: st.Value, Version: version}, nil
}

// Checkpoints of scans (see SaveScanCheckpoint) are version-0 items of the
// pseudo-stream checkpointPrefix+name, like idempotency records: no event
// lives at version 0, Load never reads it, and stream consumers skip it.
const (
	checkpointPrefix = "checkpoint#"
	attrCheckpoint   = "checkpoint"
	// CheckpointTTL is how long a scan checkpoint is kept after its last
	// save; DynamoDB's TTL deletes it afterwards.
	CheckpointTTL = 30 * 24 * time.Hour
)

// SaveScanCheckpoint durably stores data (JSON, at most 300 KB) as the
// checkpoint name: one PutItem, which replaces the previous one. Callers
// keep there where their scans have got to, so that a scan interrupted by
// a crash resumes.
func (s *Store) SaveScanCheckpoint(ctx context.Context, name string, data []byte) error {
	if name == "" || len(name) > MaxIDLen-len(checkpointPrefix) || len(data) > 300*1024 || !json.Valid(data) {
		return fmt.Errorf("eventstore/dynamostore: save checkpoint %q: a name of 1..%d bytes and at most 300 KB of JSON are required", name, MaxIDLen-len(checkpointPrefix))
	}
	item := key(checkpointPrefix+name, 0)
	item[attrCheckpoint] = &types.AttributeValueMemberS{Value: string(data)}
	item[resources.IdempotencyTTLAttribute] = num(s.clock().Add(CheckpointTTL).Unix())
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item}); err != nil {
		return fmt.Errorf("eventstore/dynamostore: save checkpoint %q: %w", name, awsconfig.MarkUnavailable(err))
	}
	return nil
}

// ScanCheckpoint returns the checkpoint name last saved; ok is false when
// there is none.
func (s *Store) ScanCheckpoint(ctx context.Context, name string) (data []byte, ok bool, err error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: key(checkpointPrefix+name, 0), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, false, fmt.Errorf("eventstore/dynamostore: read checkpoint %q: %w", name, awsconfig.MarkUnavailable(err))
	}
	if len(out.Item) == 0 {
		return nil, false, nil
	}
	v, ok := out.Item[attrCheckpoint].(*types.AttributeValueMemberS)
	if !ok {
		return nil, false, fmt.Errorf("eventstore/dynamostore: checkpoint %q is malformed", name)
	}
	return []byte(v.Value), true, nil
}

// DeleteScanCheckpoint removes the checkpoint name (nothing when absent).
func (s *Store) DeleteScanCheckpoint(ctx context.Context, name string) error {
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.table), Key: key(checkpointPrefix+name, 0)}); err != nil {
		return fmt.Errorf("eventstore/dynamostore: delete checkpoint %q: %w", name, awsconfig.MarkUnavailable(err))
	}
	return nil
}

// HasStreams reports which of ids have an event at version 1 (so exist),
// with consistent BatchGetItem reads of 100 keys at a time.
func (s *Store) HasStreams(ctx context.Context, ids []string) (map[string]bool, error) {
	found := make(map[string]bool, len(ids))
	for start := 0; start < len(ids); start += 100 {
		keys := make([]map[string]types.AttributeValue, 0, 100)
		seen := map[string]bool{}
		for _, id := range ids[start:min(start+100, len(ids))] {
			if !seen[id] && id != "" {
				seen[id] = true
				keys = append(keys, key(id, 1))
			}
		}
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys, ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String(attrStream)}}
		for attempt := 0; len(req) > 0 && len(req[s.table].Keys) > 0; attempt++ {
			if attempt > 0 {
				if err := sleep(ctx, backoff(attempt)); err != nil {
					return nil, fmt.Errorf("eventstore/dynamostore: has streams: %w", err)
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("eventstore/dynamostore: has streams: %w", awsconfig.MarkUnavailable(err))
			}
			for _, it := range out.Responses[s.table] {
				if st, ok := it[attrStream].(*types.AttributeValueMemberS); ok {
					found[st.Value] = true
				}
			}
			req = out.UnprocessedKeys
		}
	}
	return found, nil
}

// backoff is the wait before retry attempt n of unprocessed batch keys.
func backoff(n int) time.Duration {
	return min(time.Duration(1<<min(n, 10))*10*time.Millisecond, 2*time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
