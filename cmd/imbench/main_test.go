package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// centrifuge's Node.Shutdown does not wait for the workers that
		// unsubscribe emptied channels from its broker; each sleeps out
		// the rest of a second, then finds the queue closed and returns.
		goleak.IgnoreAnyFunction("github.com/centrifugal/centrifuge.(*Node).unsubscribeFromBrokerWhenEmpty.func1"),
	)
}
