package pebbleviews

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2/objstorage"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/errgroup"

	"github.com/orderledger/orderledger/internal/pebblelog"
)

// table is a run of writes bound for one sorted table (sstable) that a
// rebuild ingests into its generation. Keys and values live in one arena.
// Tables are reused (tablePool): their arenas are
// large, and allocating them afresh costs zeroing and garbage collection.
type table struct {
	space byte           // the keyspace, for the file name
	fill  func(t *table) // when set, adds the writes (run in parallel)
	kvs   []kv
	arena []byte
	// ord is kvs in key order once sorted; tmp is the radix sort's buffer.
	ord, tmp []sortKey
}

// sortKey is the 16 bytes of a key after the prefix common to all keys of
// its table (zero-padded), as two big-endian integers, and the key's index.
type sortKey struct {
	hi, lo uint64
	i      uint32
}

// sort fills t.ord with the entries in key order: a least-significant-digit
// radix sort on the 16 bytes after the common prefix (skipping the bytes
// that are the same in every key), then a comparison sort of each run of
// keys that those bytes do not tell apart. Keys must be distinct.
func (t *table) sort() {
	n := len(t.kvs)
	t.ord = slices.Grow(t.ord[:0], n)[:n]
	t.tmp = slices.Grow(t.tmp[:0], n)[:n]
	if n == 0 {
		return
	}
	first := t.key(&t.kvs[0])
	common := len(first)
	for i := range t.kvs {
		k := t.key(&t.kvs[i])
		m := min(common, len(k))
		j := 0
		for j < m && k[j] == first[j] {
			j++
		}
		common = j
	}
	var counts [16][256]int
	for i := range t.kvs {
		var p [16]byte
		copy(p[:], t.key(&t.kvs[i])[common:])
		for d, c := range p {
			counts[d][c]++
		}
		t.ord[i] = sortKey{hi: binary.BigEndian.Uint64(p[:8]), lo: binary.BigEndian.Uint64(p[8:]), i: uint32(i)}
	}
	src, dst := t.ord, t.tmp
	for d := 15; d >= 0; d-- {
		c := &counts[d]
		shift := uint(8 * (7 - d%8))
		if c[byte(digit(src[0], d, shift))] == n {
			continue // the same byte in every key
		}
		var pos [256]int
		sum := 0
		for b := range 256 {
			pos[b] = sum
			sum += c[b]
		}
		for _, e := range src {
			b := digit(e, d, shift)
			dst[pos[b]] = e
			pos[b]++
		}
		src, dst = dst, src
	}
	t.ord, t.tmp = src, dst
	for i := 0; i < n; {
		j := i + 1
		for j < n && t.ord[j].hi == t.ord[i].hi && t.ord[j].lo == t.ord[i].lo {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(t.ord[i:j], func(a, b sortKey) int {
				return bytes.Compare(t.key(&t.kvs[a.i]), t.key(&t.kvs[b.i]))
			})
		}
		i = j
	}
}

// digit returns byte d of e's 16 bytes; shift is its position in its word.
func digit(e sortKey, d int, shift uint) byte {
	if d < 8 {
		return byte(e.hi >> shift)
	}
	return byte(e.lo >> shift)
}

type kv struct {
	koff, klen uint32
	voff, vlen uint32
	del        bool
}

var tablePool sync.Pool

// newTable returns an empty table for keyspace space.
func newTable(space byte, fill func(t *table)) *table {
	t, _ := tablePool.Get().(*table)
	if t == nil {
		t = &table{}
	}
	t.space, t.fill, t.kvs, t.arena = space, fill, t.kvs[:0], t.arena[:0]
	return t
}

// release returns tables to the pool.
func release(tables []*table) {
	for _, t := range tables {
		t.fill = nil
		tablePool.Put(t)
	}
}

// grow makes room for n more entries and size more bytes of arena.
func (t *table) grow(n, size int) {
	t.kvs = slices.Grow(t.kvs, n)
	t.arena = slices.Grow(t.arena, size)
}

// add records the entry whose key is arena[kstart:vstart] and whose value
// is the rest of the arena.
func (t *table) add(kstart, vstart int, del bool) {
	t.kvs = append(t.kvs, kv{
		koff: uint32(kstart), klen: uint32(vstart - kstart),
		voff: uint32(vstart), vlen: uint32(len(t.arena) - vstart),
		del: del,
	})
}

func (t *table) key(e *kv) []byte { return t.arena[e.koff : e.koff+e.klen] }
func (t *table) val(e *kv) []byte { return t.arena[e.voff : e.voff+e.vlen] }

// set adds a write of key and val (appended to the arena).
func (t *table) set(key, val []byte) {
	k := len(t.arena)
	t.arena = append(t.arena, key...)
	v := len(t.arena)
	t.arena = append(t.arena, val...)
	t.add(k, v, false)
}

// write sorts the run and writes it as a synced table at path. Keys must be
// distinct.
func (t *table) write(path string, opts sstable.WriterOptions) (err error) {
	if len(t.arena) > math.MaxUint32 {
		return fmt.Errorf("table of %d bytes", len(t.arena))
	}
	t.sort()
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	w := sstable.NewWriter(newFileWritable(f), opts)
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	for _, o := range t.ord {
		e := &t.kvs[o.i]
		if e.del {
			err = w.Delete(t.key(e))
		} else {
			err = w.Set(t.key(e), t.val(e))
		}
		if err != nil {
			_ = w.Close()
			return err
		}
	}
	return w.Close() // syncs the file
}

// fileWritable is objstorageprovider.NewFileWritable with a 1 MiB buffer
// instead of bufio's 4 KiB: a table's blocks are about 4 KiB each, so that
// made one write call per block.
type fileWritable struct {
	f  vfs.File
	bw *bufio.Writer
}

var _ objstorage.Writable = (*fileWritable)(nil)

func newFileWritable(f vfs.File) *fileWritable {
	return &fileWritable{f: f, bw: bufio.NewWriterSize(f, 1<<20)}
}

func (w *fileWritable) Write(p []byte) error {
	_, err := w.bw.Write(p)
	return err
}

// Finish flushes, syncs and closes the file.
func (w *fileWritable) Finish() error {
	err := w.bw.Flush()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *fileWritable) Abort() { _ = w.f.Close() }

// ingestDir is where a generation's tables are written before ingestion.
func ingestDir(g *generation, dir string) string {
	return filepath.Join(genDir(dir, g.id), "ingest")
}

// ingest fills the tables, which must cover disjoint key ranges, writes
// the non-empty ones, in parallel (at most workers at once), and ingests
// them into g in one atomic step: after a crash g holds all of them or none.
// Ingestion syncs the database's directory and manifest, so they are
// durable when it returns.
func ingest(dir string, g *generation, seq int, workers int, tables []*table) error {
	tmp := ingestDir(g, dir)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return storageErr("rebuild: ingest", err)
	}
	opts := g.opts.MakeWriterOptions(0, g.db.TableFormat())
	paths := make([]string, len(tables))
	// Every table is written (a failure does not stop the others: their
	// files are removed below either way); Wait returns the first failure.
	var writers errgroup.Group
	writers.SetLimit(max(1, workers))
	for i, t := range tables {
		writers.Go(func() error {
			if t.fill != nil {
				t.fill(t)
			}
			if len(t.kvs) == 0 {
				return nil
			}
			paths[i] = filepath.Join(tmp, fmt.Sprintf("%06d-%c.sst", seq, t.space))
			if err := t.write(paths[i], opts); err != nil {
				return storageErr("rebuild: write table", err)
			}
			return nil
		})
	}
	err := writers.Wait()
	paths = slices.DeleteFunc(paths, func(p string) bool { return p == "" })
	defer func() {
		for _, p := range paths {
			_ = os.Remove(p) // linked into the database, or failed
		}
	}()
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	// The MANIFEST write of an ingestion is fatal to pebble if it fails.
	if err := pebblelog.CheckSpace("projections/pebbleviews", "rebuild: ingest", dir); err != nil {
		return err
	}
	if err := g.db.Ingest(context.Background(), paths); err != nil {
		return storageErr("rebuild: ingest", err)
	}
	return nil
}
