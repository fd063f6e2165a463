package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/transport/httpapi"
	"github.com/stretchr/testify/require"
)

func TestNotificationMetrics(t *testing.T) {
	stats := im.Stats{Notifications: 12, NotificationErrors: 3, NotificationsDropped: 7}
	srv := httptest.NewServer(httpapi.NewMetricsHandler(func() im.Stats { return stats }))
	t.Cleanup(srv.Close)
	status, body := getMetrics(t, srv.URL+"/metrics", "")
	require.Equal(t, http.StatusOK, status)
	for _, line := range []string{
		"# TYPE imserver_notifications_total counter",
		"imserver_notifications_total 12",
		"imserver_notification_errors_total 3",
		"imserver_notifications_dropped_total 7",
	} {
		require.Contains(t, body, line+"\n")
	}
}
