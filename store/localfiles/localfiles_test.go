package localfiles_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/localfiles"
	"github.com/imserver/imserver/store/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// dirs remembers the directory of each store the harness opened, for
// Reopen.
func harness() storetest.FilesHarness {
	dirs := make(map[files.Store]string)
	return storetest.FilesHarness{
		Open: func(t *testing.T) files.Store {
			dir := t.TempDir()
			s, err := localfiles.Open(dir, localfiles.Options{})
			if err != nil {
				t.Fatal(err)
			}
			dirs[s] = dir
			return s
		},
		Reopen: func(t *testing.T, s files.Store) files.Store {
			dir := dirs[s]
			s2, err := localfiles.Open(dir, localfiles.Options{})
			if err != nil {
				t.Fatal(err)
			}
			dirs[s2] = dir
			return s2
		},
	}
}

func TestStore(t *testing.T) {
	storetest.RunFiles(t, harness())
}
