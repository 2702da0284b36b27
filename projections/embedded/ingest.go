package embedded

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// table is a run of writes bound for one sorted table (sstable) that a
// rebuild ingests into its generation: keys and values live in one arena.
type table struct {
	space byte           // the keyspace, for the file name
	fill  func(t *table) // when set, adds the writes (run in parallel)
	kvs   []kv
	arena []byte
}

type kv struct {
	key, val []byte
	del      bool
}

// key appends a key built by fn to the arena and returns it.
func (t *table) key(fn func(dst []byte) []byte) []byte {
	start := len(t.arena)
	t.arena = fn(t.arena)
	return t.arena[start:len(t.arena):len(t.arena)]
}

func (t *table) set(key, val []byte) { t.kvs = append(t.kvs, kv{key: key, val: val}) }
func (t *table) del(key []byte)      { t.kvs = append(t.kvs, kv{key: key, del: true}) }

// write sorts the run and writes it as a synced table at path. Keys must be
// distinct.
func (t *table) write(path string, opts sstable.WriterOptions) (err error) {
	slices.SortFunc(t.kvs, func(a, b kv) int { return bytes.Compare(a.key, b.key) })
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), opts)
	defer func() {
		if r := recover(); r != nil {
			err = errPanic(r)
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	for i := range t.kvs {
		e := &t.kvs[i]
		if e.del {
			err = w.Delete(e.key)
		} else {
			err = w.Set(e.key, e.val)
		}
		if err != nil {
			_ = w.Close()
			return err
		}
	}
	return w.Close() // syncs the file
}

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
	errs := make([]error, len(tables))
	sem := make(chan struct{}, max(1, workers))
	done := make(chan struct{}, len(tables))
	for i, t := range tables {
		go func() {
			defer func() { done <- struct{}{} }()
			sem <- struct{}{}
			defer func() { <-sem }()
			if t.fill != nil {
				t.fill(t)
			}
			if len(t.kvs) == 0 {
				return
			}
			paths[i] = filepath.Join(tmp, fmt.Sprintf("%06d-%c.sst", seq, t.space))
			errs[i] = t.write(paths[i], opts)
		}()
	}
	for range tables {
		<-done
	}
	paths = slices.DeleteFunc(paths, func(p string) bool { return p == "" })
	defer func() {
		for _, p := range paths {
			_ = os.Remove(p) // linked into the database, or failed
		}
	}()
	for _, err := range errs {
		if err != nil {
			return storageErr("rebuild: write table", err)
		}
	}
	if len(paths) == 0 {
		return nil
	}
	if err := ingestFiles(g, paths); err != nil {
		return storageErr("rebuild: ingest", err)
	}
	return nil
}

func ingestFiles(g *generation, paths []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errPanic(r)
		}
	}()
	return g.db.Ingest(context.Background(), paths)
}
