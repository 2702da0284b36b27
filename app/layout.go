package app

import "path/filepath"

// Dirs are the databases of the embedded runtime under one data directory.
// The names are stored on disk: changing one orphans the data already
// written, so every reader of a data directory (the runtime, `ledger
// history`, `ledger dlq`, `ledger projections rebuild`, the benches) takes
// them from Layout.
type Dirs struct {
	// Events is the event store (package eventstore/pebblestore): DIR/events.
	Events string
	// Views is the read model (package projections/pebbleviews): DIR/views.
	Views string
	// Queue is the message broker (package messaging/pebblequeue): DIR/queue.
	Queue string
}

// Layout returns the databases' directories under the data directory dir.
func Layout(dir string) Dirs {
	return Dirs{
		Events: filepath.Join(dir, "events"),
		Views:  filepath.Join(dir, "views"),
		Queue:  filepath.Join(dir, "queue"),
	}
}
