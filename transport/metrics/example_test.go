package metrics_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store/memstore"
	"github.com/imserver/imserver/transport/metrics"
)

// An embedder adds the server's metrics to the registry it already
// serves, next to its own.
func ExampleNewCollector() {
	core, err := im.NewServer(im.Config{
		Store: memstore.New(),
		Authenticator: im.AuthenticatorFunc(func(ctx context.Context, token string) (im.Identity, error) {
			return im.Identity{}, im.ErrUnauthenticated // a real host checks its tokens here
		}),
	})
	if err != nil {
		panic(err)
	}
	defer core.Close()

	reg := prometheus.NewRegistry() // the host's own registry
	reg.MustRegister(metrics.NewCollector(core.Stats))

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "imserver_sessions ") || strings.HasPrefix(line, "imserver_messages_stored_total ") {
			fmt.Println(line)
		}
	}
	// Output:
	// imserver_messages_stored_total 0
	// imserver_sessions 0
}
