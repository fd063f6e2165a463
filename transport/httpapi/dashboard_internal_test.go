package httpapi

import (
	"os"
	"strings"
	"testing"
)

// docs/ADMIN.md quotes the dashboard's Content-Security-Policy as it is.
func TestDashboardCSPDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/ADMIN.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(strings.Fields(string(doc)), " "), dashboardCSP) {
		t.Errorf("docs/ADMIN.md does not quote the dashboard's CSP: %s", dashboardCSP)
	}
}
