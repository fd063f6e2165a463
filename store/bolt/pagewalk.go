package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
)

// walkPages reads the B+trees of the bbolt file f page by page, with
// ReadAt, and checks what bbolt trusts: that each page reached is within
// the file and the high water mark, says it is the page it was reached as,
// is reached once, and holds elements, keys and values within its bounds,
// with keys in order and within the range its parent gives it.
//
// bbolt.Open, for a file whose freelist is not written (NoFreelistSync),
// walks the same pages to rebuild the freelist, in a goroutine of its own,
// where a panic on a damaged page cannot be recovered and ends the
// process, and where a fault reading past the mapping cannot be turned
// into a panic either. A file that passes this walk gives that goroutine
// nothing to panic or fault on. The layout read here is bbolt 1.x's
// (internal/common: page.go, meta.go, inbucket.go), in the machine's byte
// order, as bbolt writes it.
func walkPages(f *os.File) error {
	w := pageWalker{f: f, seen: make(map[uint64]bool)}
	if err := w.readMeta(); err != nil {
		return err
	}
	if w.freelist != math.MaxUint64 {
		if _, err := w.page(w.freelist, pageFreelist); err != nil {
			return fmt.Errorf("freelist: %w", err)
		}
	}
	return w.bucket(w.root, nil, 0)
}

const (
	pageHeaderSize = 16
	elementSize    = 16 // branch and leaf elements alike
	pageBranch     = 0x01
	pageLeaf       = 0x02
	pageFreelist   = 0x10
	leafBucket     = 0x01
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	maxTreeDepth   = 64
)

var errPage = fmt.Errorf("bbolt page: %w", errCorrupt)

type pageWalker struct {
	f                   *os.File
	size                int64
	pageSize            int
	root, freelist, hwm uint64
	seen                map[uint64]bool
}

// readMeta picks the meta page bbolt would: the valid one with the higher
// transaction id.
func (w *pageWalker) readMeta() error {
	fi, err := w.f.Stat()
	if err != nil {
		return err
	}
	w.size = fi.Size()
	ne := binary.NativeEndian
	var best []byte
	var bestTx uint64
	for _, off := range []int64{0, -1} {
		if off < 0 {
			if best == nil && w.pageSize == 0 {
				// bbolt finds the second meta page at the page size the
				// first one gives; with the first one bad, try the usual.
				w.pageSize = os.Getpagesize()
			}
			off = int64(w.pageSize)
		}
		buf := make([]byte, pageHeaderSize+64)
		if _, err := w.f.ReadAt(buf, off); err != nil {
			continue
		}
		m := buf[pageHeaderSize:]
		h := fnv.New64a()
		h.Write(m[:56])
		if ne.Uint32(m[0:]) != boltMagic || ne.Uint32(m[4:]) != boltVersion || ne.Uint64(m[56:]) != h.Sum64() {
			continue
		}
		if ps := int(ne.Uint32(m[8:])); w.pageSize == 0 {
			w.pageSize = ps
		}
		if tx := ne.Uint64(m[48:]); best == nil || tx > bestTx {
			best, bestTx = m, tx
		}
	}
	if best == nil {
		return fmt.Errorf("no valid meta page: %w", errPage)
	}
	if ps := int(ne.Uint32(best[8:])); ps < 1024 || ps > 1<<24 || ps != w.pageSize {
		return fmt.Errorf("page size %d: %w", ps, errPage)
	}
	w.root, w.freelist, w.hwm = ne.Uint64(best[16:]), ne.Uint64(best[32:]), ne.Uint64(best[40:])
	if w.hwm < 2 || w.hwm > uint64(w.size)/uint64(w.pageSize) {
		return fmt.Errorf("high water mark %d in a file of %d pages: %w", w.hwm, w.size/int64(w.pageSize), errPage)
	}
	return nil
}

// page reads page id, with its overflow pages, and requires its flags to
// be one of want's.
func (w *pageWalker) page(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("page %d out of bounds (high water mark %d): %w", id, w.hwm, errPage)
	}
	if w.seen[id] {
		return nil, fmt.Errorf("page %d reached twice: %w", id, errPage)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := w.f.ReadAt(hdr, int64(id)*int64(w.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w: %w", id, err, errPage)
	}
	ne := binary.NativeEndian
	if got := ne.Uint64(hdr); got != id {
		return nil, fmt.Errorf("page %d says it is page %d: %w", id, got, errPage)
	}
	// Exactly one of want's flags: bbolt's own check panics on a page that
	// claims two types at once.
	if flags := ne.Uint16(hdr[8:]); flags&want == 0 || flags&^want != 0 || flags&(flags-1) != 0 {
		return nil, fmt.Errorf("page %d has flags %#x: %w", id, flags, errPage)
	}
	overflow := uint64(ne.Uint32(hdr[12:]))
	if id+overflow >= w.hwm {
		return nil, fmt.Errorf("page %d overflows past the high water mark: %w", id, errPage)
	}
	for i := range overflow + 1 {
		w.seen[id+i] = true
	}
	p := make([]byte, (overflow+1)*uint64(w.pageSize))
	if _, err := w.f.ReadAt(p, int64(id)*int64(w.pageSize)); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("page %d: %w: %w", id, err, errPage)
	}
	return p, nil
}

// bucket walks the bucket whose root page is root, or, when root is 0,
// whose inline page is inline.
func (w *pageWalker) bucket(root uint64, inline []byte, depth int) error {
	if depth > 8 {
		return fmt.Errorf("buckets nested %d deep: %w", depth, errPage)
	}
	if root == 0 {
		if len(inline) < pageHeaderSize {
			return fmt.Errorf("inline bucket of %d bytes: %w", len(inline), errPage)
		}
		if flags := binary.NativeEndian.Uint16(inline[8:]); flags != pageLeaf {
			return fmt.Errorf("inline bucket with flags %#x: %w", flags, errPage)
		}
		return w.node(inline, "inline", nil, nil, depth, 0)
	}
	return w.tree(root, nil, nil, depth, 0)
}

// tree walks the subtree of page id, whose keys must be >= lo and, if hi
// is not nil, < hi.
func (w *pageWalker) tree(id uint64, lo, hi []byte, depth, height int) error {
	if height > maxTreeDepth {
		return fmt.Errorf("tree deeper than %d: %w", maxTreeDepth, errPage)
	}
	p, err := w.page(id, pageBranch|pageLeaf)
	if err != nil {
		return err
	}
	return w.node(p, fmt.Sprint("page ", id), lo, hi, depth, height)
}

// node checks the elements of page p (read as name) and walks what they
// lead to.
func (w *pageWalker) node(p []byte, name string, lo, hi []byte, depth, height int) error {
	ne := binary.NativeEndian
	flags := ne.Uint16(p[8:])
	count := int(ne.Uint16(p[10:]))
	if pageHeaderSize+count*elementSize > len(p) {
		return fmt.Errorf("%s: %d elements do not fit: %w", name, count, errPage)
	}
	branch := flags&pageBranch != 0
	if branch && count == 0 {
		return fmt.Errorf("%s: a branch page without elements: %w", name, errPage)
	}
	keys := make([][]byte, count)
	type entry struct {
		val   []byte
		child uint64
		flags uint32
	}
	entries := make([]entry, count)
	for i := range count {
		e := pageHeaderSize + i*elementSize
		var pos, ksize, vsize uint64
		if branch {
			pos, ksize = uint64(ne.Uint32(p[e:])), uint64(ne.Uint32(p[e+4:]))
			entries[i].child = ne.Uint64(p[e+8:])
		} else {
			entries[i].flags = ne.Uint32(p[e:])
			pos, ksize, vsize = uint64(ne.Uint32(p[e+4:])), uint64(ne.Uint32(p[e+8:])), uint64(ne.Uint32(p[e+12:]))
		}
		start := uint64(e) + pos
		if ksize == 0 || start+ksize+vsize > uint64(len(p)) {
			return fmt.Errorf("%s: element %d out of the page: %w", name, i, errPage)
		}
		keys[i] = p[start : start+ksize]
		entries[i].val = p[start+ksize : start+ksize+vsize]
		if (i > 0 && bytes.Compare(keys[i-1], keys[i]) >= 0) || (lo != nil && bytes.Compare(keys[i], lo) < 0) || (hi != nil && bytes.Compare(keys[i], hi) >= 0) {
			return fmt.Errorf("%s: key %d out of order: %w", name, i, errPage)
		}
	}
	for i, en := range entries {
		switch {
		case branch:
			var next []byte
			if i+1 < count {
				next = keys[i+1]
			} else {
				next = hi
			}
			if err := w.tree(en.child, keys[i], next, depth, height+1); err != nil {
				return err
			}
		case en.flags&leafBucket != 0:
			if len(en.val) < 16 {
				return fmt.Errorf("%s: bucket %q of %d bytes: %w", name, keys[i], len(en.val), errPage)
			}
			if err := w.bucket(ne.Uint64(en.val), en.val[16:], depth+1); err != nil {
				return err
			}
		case en.flags != 0:
			return fmt.Errorf("%s: element %d has flags %#x: %w", name, i, en.flags, errPage)
		}
	}
	return nil
}
