package pebblelog_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/orderledger/orderledger/domain"
	"github.com/orderledger/orderledger/internal/pebblelog"
)

func TestPrefixEnd(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want []byte }{
		{[]byte("q/a/"), []byte("q/a0")},
		{[]byte{'a', 0xFF}, []byte{'b'}},
		{[]byte{0xFF, 0xFF}, nil},
		{nil, nil},
	} {
		in := bytes.Clone(c.in)
		if got := pebblelog.PrefixEnd(in); !bytes.Equal(got, c.want) {
			t.Errorf("PrefixEnd(%q) = %q, want %q", c.in, got, c.want)
		}
		if !bytes.Equal(in, c.in) {
			t.Errorf("PrefixEnd changed its argument to %q", in)
		}
	}
}

func TestStorageErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	cause := errors.New("disk full")
	err := error(&pebblelog.StorageError{Pkg: "eventstore/pebblestore", Op: "append", Err: cause})
	if got, want := err.Error(), "eventstore/pebblestore: append: disk full"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("the engine's error does not unwrap")
	}
	if got := domain.CodeOf(err); got != domain.Unavailable {
		t.Errorf("domain code %v, want Unavailable", got)
	}
}
