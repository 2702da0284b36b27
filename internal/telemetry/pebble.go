package telemetry

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// PebbleDB is a pebble database that reports its own metrics (the
// embedded event store, read model and broker each do).
type PebbleDB interface {
	Metrics() *pebble.Metrics
}

// Pebble registers pebble's own metrics for each named database (the name
// is the db label: events, views, queue), read at scrape time.
func (m *Metrics) Pebble(dbs map[string]PebbleDB) {
	m.reg.MustRegister(&pebbleCollector{dbs: dbs})
}

var pebbleDescs = struct {
	disk, readAmp, memtable, wal, debt        *prometheus.Desc
	compactions, flushes, cacheHits, cacheMis *prometheus.Desc
}{
	disk:        pebbleDesc("disk_usage_bytes", "Bytes the database occupies on disk (tables, WAL, manifests)."),
	readAmp:     pebbleDesc("read_amplification", "Sorted runs a point read may consult (L0 sublevels plus non-empty levels)."),
	memtable:    pebbleDesc("memtable_bytes", "Bytes held in memtables."),
	wal:         pebbleDesc("wal_bytes", "Live bytes in the write-ahead log."),
	debt:        pebbleDesc("compaction_debt_bytes", "Estimated bytes to compact for the LSM to reach a stable shape."),
	compactions: pebbleDesc("compactions_total", "Compactions since the database was opened."),
	flushes:     pebbleDesc("flushes_total", "Memtable flushes since the database was opened."),
	cacheHits:   pebbleDesc("block_cache_hits_total", "Block cache hits since the database was opened."),
	cacheMis:    pebbleDesc("block_cache_misses_total", "Block cache misses since the database was opened."),
}

func pebbleDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "pebble", name), help, []string{"db"}, nil)
}

type pebbleCollector struct{ dbs map[string]PebbleDB }

func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	d := pebbleDescs
	for _, x := range []*prometheus.Desc{d.disk, d.readAmp, d.memtable, d.wal, d.debt, d.compactions, d.flushes, d.cacheHits, d.cacheMis} {
		ch <- x
	}
}

func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	d := pebbleDescs
	for name, db := range c.dbs {
		pm := db.Metrics()
		if pm == nil { // closed
			continue
		}
		g := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, name)
		}
		n := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v, name)
		}
		g(d.disk, float64(pm.DiskSpaceUsage()))
		g(d.readAmp, float64(pm.ReadAmp()))
		g(d.memtable, float64(pm.MemTable.Size))
		g(d.wal, float64(pm.WAL.Size))
		g(d.debt, float64(pm.Compact.EstimatedDebt))
		n(d.compactions, float64(pm.Compact.Count))
		n(d.flushes, float64(pm.Flush.Count))
		n(d.cacheHits, float64(pm.BlockCache.Hits))
		n(d.cacheMis, float64(pm.BlockCache.Misses))
	}
}

// GroupHistogram is what an event store has made durable in commit groups
// since it opened: Count groups holding Sum events, and for each upper bound
// (in events) the groups of at most that many (cumulative, as Prometheus
// histograms count).
type GroupHistogram struct {
	Count, Sum uint64
	Buckets    map[float64]uint64
}

var commitGroupDesc = prometheus.NewDesc(prometheus.BuildFQName(Namespace, "eventstore", "commit_group_events"),
	"Events per commit group: the appends the embedded event store made durable with one fsync of its log. Their mean is the figure that explains append throughput.",
	nil, nil)

// CommitGroups registers the event store's commit groups as the histogram
// ledger_eventstore_commit_group_events, read at scrape time. Only the
// embedded store groups commits (on DynamoDB each append is its own
// transaction, and ledger_eventstore_append_events is the whole story).
func (m *Metrics) CommitGroups(read func() GroupHistogram) {
	m.reg.MustRegister(groupCollector(read))
}

type groupCollector func() GroupHistogram

func (c groupCollector) Describe(ch chan<- *prometheus.Desc) { ch <- commitGroupDesc }

func (c groupCollector) Collect(ch chan<- prometheus.Metric) {
	h := c()
	ch <- prometheus.MustNewConstHistogram(commitGroupDesc, h.Count, float64(h.Sum), h.Buckets)
}
