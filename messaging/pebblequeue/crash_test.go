package pebblequeue_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderledger/orderledger/messaging/pebblequeue"
)

const crashDirEnv = "MESSAGING_EMBEDDED_CRASH_DIR"

// TestCrashChild is the child process of TestKill9: it sends forever from
// several goroutines, printing "sent <body>" after each Send returned, and
// receives and deletes from another queue, printing "deleted <body>" after
// each Delete returned. It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestKill9 only")
	}
	b, err := pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(3)
	}
	in, _ := b.Queue("in", pebblequeue.QueueConfig{})
	work, _ := b.Queue("work", pebblequeue.QueueConfig{})
	ctx := context.Background()
	var mu sync.Mutex
	say := func(f string, a ...any) { mu.Lock(); fmt.Printf(f+"\n", a...); mu.Unlock() }
	for w := range 4 {
		go func() {
			for n := 0; ; n++ {
				body := fmt.Sprintf("w%d-%d", w, n)
				if _, err := in.Send(ctx, []byte(body), nil); err != nil {
					say("send failed: %v", err)
					os.Exit(4)
				}
				say("sent %s", body)
			}
		}()
	}
	for range 2 {
		go func() {
			for {
				msgs, err := work.Receive(ctx, 5, time.Second)
				if err != nil {
					say("receive failed: %v", err)
					os.Exit(5)
				}
				for _, m := range msgs {
					if err := work.Delete(ctx, m.ReceiptHandle); err != nil {
						say("delete failed: %v", err)
						os.Exit(6)
					}
					say("deleted %s", m.Body)
				}
			}
		}()
	}
	select {}
}

// TestKill9 kills a busy broker with SIGKILL and checks, after reopening,
// that every acknowledged send is stored and no acknowledged delete came back.
func TestKill9(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Seed the work queue so the child has something to delete.
	b, err := pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	work, _ := b.Queue("work", pebblequeue.QueueConfig{})
	for i := range 300 {
		if _, err := work.Send(context.Background(), []byte(fmt.Sprint("seed-", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sent, deleted := map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "sent "):
			sent[strings.TrimPrefix(line, "sent ")] = true
		case strings.HasPrefix(line, "deleted "):
			deleted[strings.TrimPrefix(line, "deleted ")] = true
		case strings.Contains(line, "failed"):
			t.Fatalf("child: %s", line)
		}
		if len(sent) >= 400 && len(deleted) >= 50 {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() { // acknowledgements printed before the kill landed
		line := sc.Text()
		if s, ok := strings.CutPrefix(line, "sent "); ok {
			sent[s] = true
		} else if s, ok := strings.CutPrefix(line, "deleted "); ok {
			deleted[s] = true
		}
	}
	cmd.Wait()
	if len(sent) < 400 || len(deleted) < 50 {
		t.Fatalf("child acknowledged only %d sends and %d deletes", len(sent), len(deleted))
	}

	b, err = pebblequeue.Open(dir, pebblequeue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	in, _ := b.Queue("in", pebblequeue.QueueConfig{})
	work, _ = b.Queue("work", pebblequeue.QueueConfig{})
	stored := map[string]bool{}
	msgs, err := in.Peek(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		stored[string(m.Body)] = true
	}
	for body := range sent {
		if !stored[body] {
			t.Errorf("acknowledged send %s lost", body)
		}
	}
	left, err := work.Peek(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range left {
		if deleted[string(m.Body)] {
			t.Errorf("acknowledged delete of %s came back", m.Body)
		}
	}
	t.Logf("%d sends and %d deletes acknowledged before SIGKILL; all durable", len(sent), len(deleted))
}
