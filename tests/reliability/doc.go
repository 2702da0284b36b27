// Package reliability holds the tests that hold orderledger to its promise
// that nothing accepted is ever lost or doubled, whatever fails: the real
// binary killed with SIGKILL under load and restarted (crash_test.go),
// injected faults in the payment service, the webhook receiver and the disk
// (faults_test.go), concurrent commands on one order and many writers on
// many orders (concurrency_test.go), and rejected requests that must append
// nothing (badinput_test.go).
//
// Every test runs in plain `go test ./...` (and under -race). The soak run,
// which is not part of CI, is reliability/cmd/soak driven by scripts/soak.sh.
package reliability
