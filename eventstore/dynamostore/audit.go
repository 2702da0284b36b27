package dynamostore

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/internal/awsconfig"
)

var (
	_ eventstore.Auditable      = (*Store)(nil)
	_ eventstore.DigestRecorder = (*Store)(nil)
)

// AuditSegments is how many segments the audit's parallel scans use.
const AuditSegments = 4

// Digest records (version 0 of the pseudo-stream "audit-digest#" + taken
// at), like idempotency records never seen by Load or stream consumers.
const (
	digestPrefix   = "audit-digest#"
	attrRoot       = "root"
	attrStreams    = "streams"
	attrEvents     = "events"
	attrTakenAt    = "taken_at"
	attrFormat     = "format"
	attrFeedDigest = "feed_digest"
)

// scanHeads reads every event's key and hash with a consistent parallel
// Scan (AuditSegments segments, every page) and returns each stream's
// head and whether the stream has an event without a hash. A Scan reads
// (and is charged for) whole items even with a projection.
func (s *Store) scanHeads(ctx context.Context) (map[string]eventstore.Head, map[string]bool, error) {
	type part struct {
		heads    map[string]eventstore.Head
		unhashed map[string]bool
		err      error
	}
	parts := make([]part, AuditSegments)
	var wg sync.WaitGroup
	for seg := range AuditSegments {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &parts[seg]
			p.heads, p.unhashed = map[string]eventstore.Head{}, map[string]bool{}
			pg := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{
				TableName:                aws.String(s.table),
				Segment:                  aws.Int32(int32(seg)),
				TotalSegments:            aws.Int32(AuditSegments),
				ConsistentRead:           aws.Bool(true),
				ProjectionExpression:     aws.String("#s, #v, #h"),
				ExpressionAttributeNames: map[string]string{"#s": attrStream, "#v": attrVersion, "#h": attrHash},
			})
			for pg.HasMorePages() {
				page, err := pg.NextPage(ctx)
				if err != nil {
					p.err = fmt.Errorf("eventstore/dynamostore: scan: %w", awsconfig.MarkUnavailable(err))
					return
				}
				for _, it := range page.Items {
					st, ok1 := it[attrStream].(*types.AttributeValueMemberS)
					vn, ok2 := it[attrVersion].(*types.AttributeValueMemberN)
					if !ok1 || !ok2 {
						p.err = fmt.Errorf("eventstore/dynamostore: scan: an item without %s or %s", attrStream, attrVersion)
						return
					}
					v, err := strconv.ParseInt(vn.Value, 10, 64)
					if err != nil {
						p.err = fmt.Errorf("eventstore/dynamostore: scan %s: version %q: %w", st.Value, vn.Value, err)
						return
					}
					if v <= 0 {
						continue // an idempotency or digest record
					}
					var h eventstore.Hash
					if b, ok := it[attrHash].(*types.AttributeValueMemberB); ok && len(b.Value) == eventstore.HashSize {
						h = eventstore.Hash(b.Value)
					} else {
						p.unhashed[st.Value] = true
					}
					if cur, ok := p.heads[st.Value]; !ok || v > cur.Version {
						p.heads[st.Value] = eventstore.Head{StreamID: st.Value, Version: v, Hash: h}
					}
				}
			}
		}()
	}
	wg.Wait()
	heads, unhashed := map[string]eventstore.Head{}, map[string]bool{}
	for _, p := range parts {
		if p.err != nil {
			return nil, nil, p.err
		}
		// A stream's items may lie in several segments.
		for k, h := range p.heads {
			if cur, ok := heads[k]; !ok || h.Version > cur.Version {
				heads[k] = h
			}
		}
		for k := range p.unhashed {
			unhashed[k] = true
		}
	}
	return heads, unhashed, nil
}

// Heads implements eventstore.Auditable with one parallel scan.
func (s *Store) Heads(ctx context.Context, fn func(eventstore.Head) error) error {
	heads, _, err := s.scanHeads(ctx)
	if err != nil {
		return err
	}
	for _, h := range heads {
		if err := fn(h); err != nil {
			return err
		}
	}
	return nil
}

// RecordDigest implements eventstore.DigestRecorder: one item,
// (stream_id = "audit-digest#" + taken at, version = 0), holding the root,
// the counts and the time (not the heads: an item is at most 400 KB; the
// heads are in the exported digest).
func (s *Store) RecordDigest(ctx context.Context, d eventstore.Digest) error {
	item := key(digestPrefix+d.TakenAt.UTC().Format(time.RFC3339Nano), 0)
	item[attrFormat] = &types.AttributeValueMemberS{Value: d.Format}
	item[attrTakenAt] = &types.AttributeValueMemberS{Value: d.TakenAt.UTC().Format(time.RFC3339Nano)}
	item[attrRoot] = &types.AttributeValueMemberB{Value: d.Root[:]}
	item[attrStreams] = num(int64(d.Streams))
	item[attrEvents] = num(d.Events)
	if d.Feed != nil {
		item[attrFeedDigest] = &types.AttributeValueMemberB{Value: d.Feed.Digest[:]}
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: item, ConditionExpression: notExists})
	if err != nil {
		return fmt.Errorf("eventstore/dynamostore: record digest: %w", awsconfig.MarkUnavailable(err))
	}
	return nil
}

// Migrate implements eventstore.Auditable: one parallel scan finds the
// streams with events without a hash; each such stream is loaded and its
// unhashed events get prev_hash and hash with one conditional UpdateItem
// each (attribute_not_exists(hash) and the same event_id), oldest first,
// so an interrupted run leaves a hashed prefix that the next run carries
// on from. An append racing it may store an unhashed event after it
// passed (the store does not hash after an unhashed version); a second
// run hashes it.
func (s *Store) Migrate(ctx context.Context, progress func(eventstore.MigrateReport)) (eventstore.MigrateReport, error) {
	var rep eventstore.MigrateReport
	heads, unhashed, err := s.scanHeads(ctx)
	if err != nil {
		return rep, err
	}
	rep.Streams = len(heads)
	for stream := range unhashed {
		events, err := s.Load(ctx, stream, 1)
		if err != nil {
			return rep, err
		}
		if len(events) == 0 {
			continue
		}
		var prev eventstore.Hash
		for i := range events {
			e := &events[i]
			if !e.Hash.IsZero() {
				prev = e.Hash
				continue
			}
			h := eventstore.EventHash(e, prev)
			names := map[string]string{"#h": attrHash, "#id": attrEventID}
			values := map[string]types.AttributeValue{":h": &types.AttributeValueMemberB{Value: h[:]}, ":id": &types.AttributeValueMemberS{Value: e.EventID}}
			update := "SET #h = :h"
			if !prev.IsZero() {
				names["#p"] = attrPrevHash
				values[":p"] = &types.AttributeValueMemberB{Value: prev[:]}
				update += ", #p = :p"
			}
			_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(s.table), Key: key(stream, e.Version),
				UpdateExpression:          aws.String(update),
				ConditionExpression:       aws.String("attribute_not_exists(#h) AND #id = :id"),
				ExpressionAttributeNames:  names,
				ExpressionAttributeValues: values,
			})
			if err != nil {
				return rep, fmt.Errorf("eventstore/dynamostore: migrate %s v%d: %w", stream, e.Version, awsconfig.MarkUnavailable(err))
			}
			prev = h
			rep.Events++
		}
		rep.MigratedStreams++
		s.remember(stream, events[len(events)-1].Version, prev)
		if progress != nil {
			progress(rep)
		}
	}
	return rep, nil
}
