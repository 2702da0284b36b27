package awstest

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Meter counts the requests made through the configurations it is attached
// to, per "Service.Operation", and estimates the DynamoDB capacity units they
// consume by the published on-demand rules: a write is 1 unit per started
// KiB of item (2 in a transaction); a strongly consistent read is 1 unit per
// started 4 KiB of items returned (0.5 eventually consistent, 2 in a
// transaction), at least one per request. A write that fails its condition
// still costs its units.
//
// Global secondary indexes: for a table described with Index, a successful
// put is charged what DynamoDB charges each index for it, which depends on
// the item it replaces. The meter keeps the last item it saw written per
// key (every write of a metered run passes through it): a new index entry
// costs 1 unit per started KiB of what the index projects, a changed index
// key 2 (the old entry deleted, the new one put), a change to a projected
// attribute 1, and a write that changes nothing the index holds 0. For a
// table given only a count (SetIndexes), every write is charged one unit
// per index, the rule's upper bound for an unchanged key. Update and delete
// requests are counted at the size of what they send, a lower bound. Safe
// for concurrent use.
type Meter struct {
	mu      sync.Mutex
	calls   map[string]int64
	wcu     float64
	rcu     float64
	byTable map[string]TableUsage
	gsis    map[string]int
	tables  map[string]*tableShape
	written map[string]map[string]map[string]types.AttributeValue // table -> key -> last item
}

// Index describes a global secondary index for the meter: its key
// attributes, and what it projects besides the keys (KeysOnly; Include, the
// named attributes; neither: ALL).
type Index struct {
	Name     string
	Keys     []string
	KeysOnly bool
	Include  []string
}

type tableShape struct {
	key     []string // the table's own key attributes
	indexes []Index
}

// NewMeter returns a meter. gsis maps table names to their number of global
// secondary indexes, which multiply the cost of writes.
func NewMeter(gsis map[string]int) *Meter {
	g := map[string]int{}
	for k, v := range gsis {
		g[k] = v
	}
	return &Meter{calls: map[string]int64{}, byTable: map[string]TableUsage{}, gsis: g, tables: map[string]*tableShape{}, written: map[string]map[string]map[string]types.AttributeValue{}}
}

// Describe records table's key and its global secondary indexes as
// DynamoDB describes them, so that writes to it are charged per index by
// what they change (see Meter).
func (m *Meter) Describe(ctx context.Context, db *dynamodb.Client, table string) error {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return err
	}
	shape := &tableShape{}
	for _, k := range out.Table.KeySchema {
		shape.key = append(shape.key, aws.ToString(k.AttributeName))
	}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		idx := Index{Name: aws.ToString(g.IndexName)}
		for _, k := range g.KeySchema {
			idx.Keys = append(idx.Keys, aws.ToString(k.AttributeName))
		}
		if g.Projection != nil {
			switch g.Projection.ProjectionType {
			case types.ProjectionTypeKeysOnly:
				idx.KeysOnly = true
			case types.ProjectionTypeInclude:
				idx.Include = g.Projection.NonKeyAttributes
			}
		}
		shape.indexes = append(shape.indexes, idx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tables[table] = shape
	delete(m.gsis, table)
	return nil
}

// countWrite adds items written and units spent to table's usage.
func (m *Meter) countWrite(table string, items int64, units float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.byTable[table]
	t.Writes += items
	t.WriteUnits += units
	m.byTable[table] = t
}

// indexUnits is what writing item (replacing old, nil if none) costs idx.
func indexUnits(shape *tableShape, idx Index, old, item map[string]types.AttributeValue) float64 {
	has := func(it map[string]types.AttributeValue) bool {
		if it == nil {
			return false
		}
		for _, k := range idx.Keys {
			if _, ok := it[k]; !ok {
				return false
			}
		}
		return true
	}
	projected := func(it map[string]types.AttributeValue) map[string]types.AttributeValue {
		p := map[string]types.AttributeValue{}
		add := func(name string) {
			if v, ok := it[name]; ok {
				p[name] = v
			}
		}
		for _, k := range shape.key {
			add(k)
		}
		for _, k := range idx.Keys {
			add(k)
		}
		switch {
		case idx.KeysOnly:
		case idx.Include != nil:
			for _, k := range idx.Include {
				add(k)
			}
		default:
			return it
		}
		return p
	}
	inOld, inNew := has(old), has(item)
	switch {
	case !inOld && !inNew:
		return 0
	case !inNew:
		return 1 // the old entry deleted
	case !inOld:
		return kib(ItemSize(projected(item)), 1024)
	}
	for _, k := range idx.Keys {
		if !reflect.DeepEqual(old[k], item[k]) {
			return 1 + kib(ItemSize(projected(item)), 1024) // delete, then put
		}
	}
	if reflect.DeepEqual(projected(old), projected(item)) {
		return 0
	}
	return kib(ItemSize(projected(item)), 1024)
}

// putUnits is what indexes charge for putting item into table after a
// successful write; it records item as the key's last.
func (m *Meter) putUnits(table string, item map[string]types.AttributeValue) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	shape := m.tables[table]
	if shape == nil {
		return 0
	}
	var key strings.Builder
	for _, k := range shape.key {
		key.WriteString(fmt.Sprint(item[k]))
		key.WriteByte(0)
	}
	old := m.written[table][key.String()]
	var units float64
	for _, idx := range shape.indexes {
		units += indexUnits(shape, idx, old, item)
	}
	if m.written[table] == nil {
		m.written[table] = map[string]map[string]types.AttributeValue{}
	}
	m.written[table][key.String()] = item
	return units
}

// Usage is what a meter has counted.
type Usage struct {
	// Calls maps "Service.Operation" (e.g. "DynamoDB.PutItem") to a count.
	Calls map[string]int64 `json:"calls"`
	// WriteUnits and ReadUnits are the estimated DynamoDB capacity units.
	WriteUnits float64 `json:"write_units"`
	ReadUnits  float64 `json:"read_units"`
	// Tables splits the DynamoDB writes by table.
	Tables map[string]TableUsage `json:"tables,omitempty"`
}

// TableUsage is what was written to one DynamoDB table.
type TableUsage struct {
	// Writes counts the items written (a transaction's items each count).
	Writes     int64   `json:"writes"`
	WriteUnits float64 `json:"write_units"`
}

// Sub returns u minus an earlier snapshot.
func (u Usage) Sub(earlier Usage) Usage {
	d := Usage{Calls: map[string]int64{}, WriteUnits: u.WriteUnits - earlier.WriteUnits, ReadUnits: u.ReadUnits - earlier.ReadUnits, Tables: map[string]TableUsage{}}
	for k, v := range u.Calls {
		if n := v - earlier.Calls[k]; n != 0 {
			d.Calls[k] = n
		}
	}
	for k, v := range u.Tables {
		e := earlier.Tables[k]
		if v.Writes != e.Writes || v.WriteUnits != e.WriteUnits {
			d.Tables[k] = TableUsage{Writes: v.Writes - e.Writes, WriteUnits: v.WriteUnits - e.WriteUnits}
		}
	}
	return d
}

// Service returns the number of calls to one service ("DynamoDB", "SQS"...).
func (u Usage) Service(name string) int64 {
	var n int64
	for k, v := range u.Calls {
		if len(k) > len(name) && k[:len(name)] == name && k[len(name)] == '.' {
			n += v
		}
	}
	return n
}

// Operations returns the counted operation names, sorted.
func (u Usage) Operations() []string {
	out := make([]string, 0, len(u.Calls))
	for k := range u.Calls {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Snapshot returns what has been counted so far.
func (m *Meter) Snapshot() Usage {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := Usage{Calls: make(map[string]int64, len(m.calls)), WriteUnits: m.wcu, ReadUnits: m.rcu, Tables: make(map[string]TableUsage, len(m.byTable))}
	for k, v := range m.calls {
		u.Calls[k] = v
	}
	for k, v := range m.byTable {
		u.Tables[k] = v
	}
	return u
}

// Attach adds the meter to every client built from cfg from now on.
func (m *Meter) Attach(cfg *aws.Config) {
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("orderledgerMeter", m.handle), middleware.After)
	})
}

func (m *Meter) handle(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	key := awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx)
	out, md, err := next.HandleInitialize(ctx, in)
	w, r := m.units(in.Parameters, out.Result, err)
	m.mu.Lock()
	m.calls[key]++
	m.wcu += w
	m.rcu += r
	m.mu.Unlock()
	return out, md, err
}

func kib(size, unit int) float64 {
	if size <= 0 {
		return 1
	}
	return math.Ceil(float64(size) / float64(unit))
}

// units estimates the capacity one DynamoDB request consumed.
func (m *Meter) units(params, result any, err error) (wcu, rcu float64) {
	m.mu.Lock()
	gsis := m.gsis
	m.mu.Unlock()
	write := func(table string, size int, factor float64) float64 {
		units := kib(size, 1024) * factor * float64(1+gsis[table])
		m.countWrite(table, 1, units)
		return units
	}
	readFactor := func(consistent *bool) float64 {
		if consistent != nil && *consistent {
			return 1
		}
		return 0.5
	}
	switch p := params.(type) {
	case *dynamodb.PutItemInput:
		table := aws.ToString(p.TableName)
		wcu = write(table, ItemSize(p.Item), 1)
		if err == nil {
			idx := m.putUnits(table, p.Item)
			m.countWrite(table, 0, idx)
			wcu += idx
		}
		return wcu, 0
	case *dynamodb.UpdateItemInput:
		return write(aws.ToString(p.TableName), ItemSize(p.Key)+ItemSize(p.ExpressionAttributeValues), 1), 0
	case *dynamodb.DeleteItemInput:
		return write(aws.ToString(p.TableName), ItemSize(p.Key), 1), 0
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range p.TransactItems {
			switch {
			case it.Put != nil:
				table := aws.ToString(it.Put.TableName)
				wcu += write(table, ItemSize(it.Put.Item), 2)
				if err == nil {
					idx := 2 * m.putUnits(table, it.Put.Item)
					m.countWrite(table, 0, idx)
					wcu += idx
				}
			case it.Update != nil:
				wcu += write(aws.ToString(it.Update.TableName), ItemSize(it.Update.Key)+ItemSize(it.Update.ExpressionAttributeValues), 2)
			case it.Delete != nil:
				wcu += write(aws.ToString(it.Delete.TableName), ItemSize(it.Delete.Key), 2)
			case it.ConditionCheck != nil:
				wcu += 2
			}
		}
		return wcu, 0
	case *dynamodb.GetItemInput:
		size := 0
		if o, ok := result.(*dynamodb.GetItemOutput); ok && err == nil {
			size = ItemSize(o.Item)
		}
		return 0, kib(size, 4096) * readFactor(p.ConsistentRead)
	case *dynamodb.QueryInput:
		size := 0
		if o, ok := result.(*dynamodb.QueryOutput); ok && err == nil {
			for _, it := range o.Items {
				size += ItemSize(it)
			}
		}
		return 0, kib(size, 4096) * readFactor(p.ConsistentRead)
	case *dynamodb.ScanInput:
		size := 0
		if o, ok := result.(*dynamodb.ScanOutput); ok && err == nil {
			for _, it := range o.Items {
				size += ItemSize(it)
			}
		}
		return 0, kib(size, 4096) * readFactor(p.ConsistentRead)
	case *dynamodb.BatchGetItemInput:
		// Each item is read as by its own GetItem: 4 KiB units, at least 1.
		if o, ok := result.(*dynamodb.BatchGetItemOutput); ok && err == nil {
			for table, items := range o.Responses {
				var consistent *bool
				if ka, ok := p.RequestItems[table]; ok {
					consistent = ka.ConsistentRead
				}
				for _, it := range items {
					rcu += kib(ItemSize(it), 4096) * readFactor(consistent)
				}
			}
		}
		return 0, rcu
	case *dynamodb.TransactGetItemsInput:
		return 0, 2 * float64(len(p.TransactItems))
	}
	return 0, 0
}

// ItemSize returns the size DynamoDB bills for an item: the UTF-8 length of
// every attribute name plus the size of its value.
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return (len(v.Value)+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += (len(s)+1)/2 + 1
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberM:
		return 3 + ItemSize(v.Value) + len(v.Value)
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	}
	return 0
}

// SetIndexes records that table has n global secondary indexes.
func (m *Meter) SetIndexes(table string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gsis[table] = n
}
