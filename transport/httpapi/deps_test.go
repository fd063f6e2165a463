package httpapi_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoPasswordOrTokenCrypto keeps the promise of im/auth's doc: a
// host that authenticates users itself and mounts this API (the group,
// conversation and file routes, with its own Authenticator) beside the
// core, the other transports and any of the stores does not link bcrypt or
// a JWT library. The account types and store interfaces come from
// im/auth/account, which has neither.
func TestLinksNoPasswordOrTokenCrypto(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list the dependencies with")
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}",
		".", "../tcp", "../websocket", "../../im", "../../im/files",
		"../../store/bolt", "../../store/sqlstore", "../../store/memstore", "../../store/localfiles").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list named no dependency")
	}
	for _, p := range deps {
		switch {
		case strings.Contains(p, "bcrypt"), strings.Contains(p, "jwt"),
			p == "github.com/imserver/imserver/im/auth":
			t.Errorf("the packages a host embeds depend on %s", p)
		}
	}
}
