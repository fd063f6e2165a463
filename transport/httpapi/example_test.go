package httpapi_test

import (
	"fmt"
	"io"
	"log"
	"net/http/httptest"

	"github.com/imserver/imserver/transport/httpapi"
)

// With no Accounts the API serves only its health check; a host that has its
// own accounts mounts it like this.
func ExampleNewHandler() {
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Options{}))
	defer srv.Close()

	resp, err := srv.Client().Get(srv.URL + "/health")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output: 200 {"code":0,"message":"ok"}
}
