package wire_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im/wire"
)

func TestEncodingsFirstPutWins(t *testing.T) {
	type formatA struct{}
	type formatB struct{}
	var e wire.Encodings
	require.Nil(t, e.Get(formatA{}))

	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = e.Put(formatA{}, []byte{byte(i)})
		}()
	}
	wg.Wait()
	for _, b := range got {
		require.Equal(t, got[0], b, "every writer sends the bytes stored first")
	}
	require.Equal(t, got[0], e.Get(formatA{}))

	require.Nil(t, e.Get(formatB{}), "formats are kept apart")
	require.Equal(t, []byte("b"), e.Put(formatB{}, []byte("b")))
	require.Equal(t, got[0], e.Get(formatA{}))
}
