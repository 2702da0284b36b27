// Package ordergen generates realistic order histories (Orders), decided by
// the order aggregate, for the projection tests and the rebuild benchmark.
// It ships in the ledger binary (`ledger bench rebuild`), so it imports no
// test package.
package ordergen

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/domain/order"
	"github.com/orderledger/orderledger/eventstore"
	"github.com/orderledger/orderledger/orders"
)

// Orders returns n order histories decided by the order aggregate, each a
// stream of envelopes with versions 1..k, IDs that are ULIDs in creation
// order and times from start on. The mix covers every outcome: completed,
// payment failed, inventory failed after payment (refunded then failed),
// cancelled, and still pending at each step. Positions are left zero.
func Orders(rng *rand.Rand, codec *orders.Codec, n int, start time.Time) [][]eventstore.Event {
	ids := domain.NewULIDSource(rngReader{rng})
	customers := []string{"Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov", "Ken Thompson"}
	products := []string{"keyboard", "mouse", "monitor", "cable", "laptop stand"}
	out := make([][]eventstore.Event, 0, n)
	at := start.UTC()
	for i := 0; i < n; i++ {
		at = at.Add(time.Duration(1+rng.IntN(3000)) * time.Millisecond)
		id := ids(at)
		var cmds []order.Command
		cmds = append(cmds, order.Place{
			CustomerName: customers[rng.IntN(len(customers))],
			ProductName:  products[rng.IntN(len(products))],
			Quantity:     1 + rng.IntN(20),
		})
		pay := order.RecordPayment{PaymentID: "pay-" + id[len(id)-8:], Amount: int64(100 + rng.IntN(100000))}
		res := order.RecordReservation{ReservationID: "res-" + id[len(id)-8:]}
		switch k := rng.IntN(10); {
		case k < 4: // completed
			cmds = append(cmds, pay, res, order.Complete{})
		case k < 5: // payment failed
			cmds = append(cmds, order.RecordPaymentFailure{Reason: "card declined", Attempts: 1 + rng.IntN(3)})
		case k < 6: // out of stock after payment: refund, then fail
			cmds = append(cmds, pay, order.RecordReservationFailure{Reason: "out of stock"},
				order.RecordRefund{Reason: "out of stock"},
				order.Fail{Reason: "out of stock", Step: string(order.StepReserve), Attempts: 1})
		case k < 8: // cancelled
			cmds = append(cmds, order.Cancel{Reason: "changed my mind"})
		default: // still pending, stopped somewhere along the way
			all := []order.Command{pay, res}
			cmds = append(cmds, all[:rng.IntN(len(all)+1)]...)
		}
		var stream []eventstore.Event
		o := order.Order{ID: id}
		for _, c := range cmds {
			evs, err := order.Decide(o, c)
			if err != nil {
				panic(fmt.Sprintf("readmodeltest: orders: %T on %+v: %v", c, o, err))
			}
			for _, e := range evs {
				at = at.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
				env, err := codec.Encode(e, ids(at), at, eventstore.Metadata{CorrelationID: id})
				if err != nil {
					panic(err)
				}
				o = o.Apply(e)
				env.StreamID, env.Version = id, o.Version
				stream = append(stream, env)
			}
		}
		out = append(out, stream)
	}
	return out
}

// Interleave returns the events of streams in one random order that keeps
// each stream's versions in order, as a global log would hold them.
func Interleave(rng *rand.Rand, streams [][]eventstore.Event) []eventstore.Event {
	next := make([]int, len(streams))
	live := make([]int, 0, len(streams))
	total := 0
	for i, s := range streams {
		if len(s) > 0 {
			live = append(live, i)
			total += len(s)
		}
	}
	out := make([]eventstore.Event, 0, total)
	for len(live) > 0 {
		// Favour recent streams a little, as real traffic does.
		j := len(live) - 1 - min(rng.IntN(len(live)), rng.IntN(len(live)))
		s := live[j]
		out = append(out, streams[s][next[s]])
		next[s]++
		if next[s] == len(streams[s]) {
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
		}
	}
	return out
}

type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}
