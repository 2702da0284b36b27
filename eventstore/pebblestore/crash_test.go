package pebblestore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/eventstore/pebblestore"
)

func smallPebble(o *pebble.Options) {
	o.MemTableSize = 4 << 20
	o.CacheSize = 4 << 20
}

const crashDirEnv = "EMBEDDED_CRASH_CHILD_DIR"

// TestCrashChild is the child process of TestKill: it appends forever from
// several goroutines and prints "ack <stream> <version> <key> end" after each
// append returned. It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill only")
	}
	s, err := pebblestore.Open(dir)
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	prefix := os.Getenv(crashDirEnv + "_ROUND")
	for w := range 6 {
		go func() {
			for n := 0; ; n++ {
				stream := fmt.Sprintf("%s-w%d-%d", prefix, w, n/5)
				expected := int64(n % 5 * 2)
				key := "-"
				var err error
				var res eventstore.Result
				if n%3 == 0 {
					key = fmt.Sprintf("%s-key-%d-%d", prefix, w, n)
					res, err = s.AppendIdempotent(context.Background(), key, stream, expected, event(n), event(n+1))
				} else {
					res, err = s.Append(context.Background(), stream, expected, event(n), event(n+1))
				}
				if err != nil {
					fmt.Println("append failed:", err)
					os.Exit(4)
				}
				mu.Lock()
				fmt.Printf("ack %s %d %s end\n", stream, res.Version, key)
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestKill appends from a child process, kills it with SIGKILL in the
// middle, reopens the store and checks that every acknowledged append is
// there and that streams and feed have no gap. Twice, on the same data.
func TestKill(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	acked := map[string]int64{} // stream -> highest acknowledged version
	keys := map[string]string{} // idempotency key -> stream
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s_ROUND=r%d", crashDirEnv, round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n, killed := 0, false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 5 || f[0] != "ack" || f[4] != "end" {
				if !killed {
					t.Fatalf("child: %s", sc.Text())
				}
				continue
			}
			v, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				t.Fatalf("child line %q", sc.Text())
			}
			acked[f[1]] = max(acked[f[1]], v)
			if f[3] != "-" {
				keys[f[3]] = f[1]
			}
			n++
			if n == 400+round*300 && !killed {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		err = cmd.Wait()
		if !killed {
			t.Fatalf("child ended before the kill: %v", err)
		}

		s, err := pebblestore.Open(dir)
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		lengths := map[string]int64{}
		for stream, v := range acked {
			got, err := s.Load(ctx, stream, 0)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(got)) < v {
				t.Fatalf("round %d: stream %s has %d events, %d were acknowledged", round, stream, len(got), v)
			}
			for i, e := range got {
				if e.Version != int64(i+1) || e.StreamID != stream {
					t.Fatalf("stream %s: event %d is %s v%d", stream, i, e.StreamID, e.Version)
				}
			}
			lengths[stream] = int64(len(got))
		}
		for key, stream := range keys {
			res, err := s.AppendIdempotent(ctx, key, "other", 0, event(0))
			if err != nil || !res.Duplicate || res.StreamID != stream {
				t.Fatalf("key %s after kill: %+v, %v", key, res, err)
			}
		}
		head, _ := s.Head(ctx)
		seen := map[string]int64{}
		for after := uint64(0); after < head; {
			page, err := s.ReadFeed(ctx, after, 1000)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				if e.Position != after+1 {
					t.Fatalf("feed: position %d after %d", e.Position, after)
				}
				if e.Version != seen[e.StreamID]+1 {
					t.Fatalf("feed: %s v%d after v%d", e.StreamID, e.Version, seen[e.StreamID])
				}
				seen[e.StreamID] = e.Version
				after = e.Position
			}
		}
		for stream, v := range acked {
			if seen[stream] != lengths[stream] || seen[stream] < v {
				t.Fatalf("feed holds %d events of %s, stream %d, acknowledged %d", seen[stream], stream, lengths[stream], v)
			}
		}
		cancel()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acknowledged appends survived a kill; feed head %d", round, n, head)
	}
}
