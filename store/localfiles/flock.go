//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package localfiles

import (
	"errors"
	"os"
	"syscall"
)

// crossProcess tells whether the shard locks keep out other processes.
const crossProcess = true

// lockFile takes an exclusive flock on the lock file at path, which it
// creates if needed, waiting for it, and returns its unlock. The file is
// opened anew for each lock: flock locks belong to an open file
// description, so two opens contend, whether in two processes or in one.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	// Closing the file releases the lock.
	return func() { f.Close() }, nil
}
