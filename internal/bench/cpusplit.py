#!/usr/bin/env python3
"""Split a CPU profile of `ledger bench e2e --cpuprofile F` by component
(BENCHMARKS.md, "The floor on 2 cores"):

    go tool pprof -traces BINARY F | python3 internal/bench/cpusplit.py ORDERS

Each sample goes to GC when any frame of its stack is the collector's, else
to the component of its leaf-most frame that names one (so pebble's work in
the broker's goroutine is the broker's, and JSON is JSON wherever it runs).
Prints a Markdown table of CPU seconds, shares and microseconds per order."""
import re, sys
orders = int(sys.argv[1])
gc = re.compile(r'runtime\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge|gcStart|forEachP|gcMarkDone|gcMarkTermination)')
rules = [
    ('JSON (encoding/json)', re.compile(r'^encoding/json\.')),
    ('WAL sync goroutines, all 3 DBs (fdatasync)', re.compile(r'pebble/v2/record\.\(\*LogWriter\)\.flushLoop')),
    ('pebble flush/compaction', re.compile(r'pebble/v2\.\(\*DB\)\.(compact|flush|runCompaction|maybeScheduleFlush|runIngestFlush)|pebble/v2\.\(\*compaction|pebble/v2\.\(\*DB\)\.(compact1|flush1)')),
    ('event store (eventstore/pebblestore)', re.compile(r'orderledger/eventstore/')),
    ('broker (messaging/pebblequeue)', re.compile(r'orderledger/messaging/pebblequeue')),
    ('projector (projections, pebbleviews)', re.compile(r'orderledger/projections')),
    ('publisher', re.compile(r'orderledger/publisher')),
    ('saga (processing, orders, services/sim)', re.compile(r'orderledger/(processing|services|orders)')),
    ('notifications (logsink, messaging.Consume)', re.compile(r'orderledger/messaging')),
    ('bench load generator (client HTTP, watcher)', re.compile(r'orderledger/internal/bench|net/http\.\(\*(Transport|persistConn)|net/http\.\(\*Client\)|orderledger/api\.\(\*Client\)')),
    ('HTTP server (net/http, chi, api handlers, middleware)', re.compile(r'^net/http\.|go-chi|orderledger/(api|console|internal/telemetry|internal/httpserver|internal/logging|internal/tracing)')),
    ('log/slog', re.compile(r'^log/slog')),
]
def val(s):
    m = re.match(r'([\d.]+)(ms|s|us)', s)
    v = float(m.group(1)); u = m.group(2)
    return v/1000 if u == 'ms' else v/1e6 if u == 'us' else v
tot = {}
total = 0.0
stack = []; cur = None
def flush():
    global total
    if cur is None: return
    total += cur
    cat = None
    if any(gc.search(f) for f in stack): cat = 'GC (background mark, assists, sweep)'
    else:
        for f in stack:
            for name, r in rules:
                if r.search(f): cat = name; break
            if cat: break
    cat = cat or 'other (runtime scheduler, netpoll, pebble internals elsewhere)'
    tot[cat] = tot.get(cat, 0) + cur
for line in sys.stdin:
    if line.startswith('-----'):
        flush(); stack = []; cur = None; continue
    parts = line.split()
    if not parts: continue
    if cur is None and re.match(r'^\s+[\d.]+(ms|s|us)\s', line):
        cur = val(parts[0]); stack.append(parts[1]); continue
    if cur is not None: stack.append(parts[0])
flush()
print(f"total {total:.2f} CPU s for {orders} orders: {total/orders*1e6:.0f} us/order; 2 cores fully busy: {2*orders/total:,.0f} orders/s")
print(f"| component | CPU s | share | us/order |\n|---|---:|---:|---:|")
for k, v in sorted(tot.items(), key=lambda x: -x[1]):
    print(f"| {k} | {v:.2f} | {100*v/total:.1f} % | {v/orders*1e6:.0f} |")
