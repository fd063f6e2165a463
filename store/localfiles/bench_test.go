package localfiles_test

import (
	"crypto/rand"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/imserver/imserver/im/files"
	"github.com/imserver/imserver/store/localfiles"
)

// benchSize is the size of a benchmark's file: LOCALFILES_BENCH_SIZE bytes,
// or 64 MiB. docs/PERFORMANCE.md runs it with 1 GiB.
func benchSize(b *testing.B) int64 {
	if v := os.Getenv("LOCALFILES_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("LOCALFILES_BENCH_SIZE: %v", err)
		}
		return n
	}
	return 64 << 20
}

// benchDir is where the benchmark's store lives: LOCALFILES_BENCH_DIR, or a
// temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("LOCALFILES_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// cycle gives n bytes repeating a random 1 MiB block: content that costs
// next to nothing to make.
type cycle struct {
	block []byte
	off   int
	n     int64
}

func newCycle(n int64) *cycle {
	block := make([]byte, 1<<20)
	rand.Read(block)
	return &cycle{block: block, n: n}
}

func (c *cycle) Read(p []byte) (int, error) {
	if c.n == 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), c.n)]
	k := copy(p, c.block[c.off:])
	c.off = (c.off + k) % len(c.block)
	c.n -= int64(k)
	return k, nil
}

// peakRSS reports the process's peak resident set (VmHWM) in MiB.
func peakRSS(b *testing.B) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return // not Linux
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err == nil {
				b.ReportMetric(kb/1024, "peak-RSS-MiB")
			}
		}
	}
}

// BenchmarkCreate streams a file from a generator into the store: copy,
// fsync, renames.
func BenchmarkCreate(b *testing.B) {
	size := benchSize(b)
	s, err := localfiles.Open(benchDir(b), localfiles.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		m := files.Meta{ID: files.NewID()}
		if _, err := s.Create(b.Context(), m, newCycle(size), size); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Delete(b.Context(), m.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	peakRSS(b)
}

// BenchmarkRead reads a whole file back through Open, as a download does
// (io.Copy to the response: here to io.Discard, through a writer without
// ReadFrom so that the bytes are really read).
func BenchmarkRead(b *testing.B) {
	size := benchSize(b)
	s, err := localfiles.Open(benchDir(b), localfiles.Options{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := s.Create(b.Context(), files.Meta{ID: files.NewID()}, newCycle(size), size)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		r, _, err := s.Open(b.Context(), m.ID)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(struct{ io.Writer }{io.Discard}, r)
		r.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
	peakRSS(b)
}
