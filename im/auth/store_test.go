package auth

import (
	"context"
	"testing"
)

// newTestStore returns an empty store of a real implementation, released
// when the test ends. It is set by store_ext_test.go: the stores import this
// package, so only the external test package may import them.
var newTestStore func(t *testing.T) AccountStore

// failingStore fails every call with err, to test store errors.
type failingStore struct{ err error }

func (f failingStore) CreateAccount(context.Context, Account) error { return f.err }
func (f failingStore) Account(context.Context, string) (Account, error) {
	return Account{}, f.err
}
func (f failingStore) AccountByUsername(context.Context, string) (Account, error) {
	return Account{}, f.err
}
