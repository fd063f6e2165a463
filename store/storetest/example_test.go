package storetest_test

import (
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/store/storetest"
)

// A store checks itself with a test function like this one, in its own
// _test.go file; memstore.New stands for the store's constructor.
func ExampleRun() {
	testStore := func(t *testing.T) {
		storetest.Run(t, storetest.Harness{
			Open: func(t *testing.T) im.Store {
				s := memstore.New()
				// A store with resources releases them: t.Cleanup(func() { s.Close() })
				return s
			},
		})
	}
	_ = testStore
}

// Benchmarks plug in the same way, from a BenchmarkXxx function.
func ExampleRunBenchmarks() {
	benchmarkStore := func(b *testing.B) {
		storetest.RunBenchmarks(b, func(b *testing.B) im.Store { return memstore.New() })
	}
	_ = benchmarkStore
}

// A store that also keeps the built-in accounts passes RunAccounts; Run
// calls it by itself when the store it opens implements auth.AccountStore.
func ExampleRunAccounts() {
	testAccounts := func(t *testing.T) {
		storetest.RunAccounts(t, storetest.AccountsHarness{
			Open: func(t *testing.T) auth.AccountStore { return memstore.New() },
		})
	}
	_ = testAccounts
}
