package auth

import "testing"

// SetTestStore lets the external test package, which may import the stores,
// choose the store the internal tests run on.
func SetTestStore(open func(t *testing.T) AccountStore) { newTestStore = open }
