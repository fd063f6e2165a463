package httpapi

import (
	"net/http"
	"time"
)

// NewHandlerSampling is NewHandler with the admin history sampled every
// d, so that tests need not wait AdminHistoryInterval for points.
func NewHandlerSampling(opts Options, d time.Duration) http.Handler { return newHandler(opts, d) }
