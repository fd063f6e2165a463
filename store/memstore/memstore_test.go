package memstore_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStore(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) im.Store { return memstore.New() },
		// Memory "survives" reopening because nothing is closed.
		Reopen: func(t *testing.T, s im.Store) im.Store { return s },
	})
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) im.Store { return memstore.New() })
}

func TestFiles(t *testing.T) {
	storetest.RunFiles(t, storetest.FilesHarness{
		Open: func(t *testing.T) files.Store { return memstore.NewFiles() },
		// Memory "survives" reopening because nothing is closed.
		Reopen: func(t *testing.T, s files.Store) files.Store { return s },
	})
}
