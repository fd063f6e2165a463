package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoServerPackage keeps the client on its side of the wall: of
// this module it may use the protocol (im/imv1) and the vocabulary both ends
// share (im/wire), never the server (im), a transport or a store, so that a
// program that only talks to a server does not link one.
func TestImportsNoServerPackage(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list the dependencies with")
	}
	const module = "github.com/imserver/imserver/"
	allowed := map[string]bool{
		module + "im/client": true,
		module + "im/imv1":   true,
		module + "im/wire":   true,
	}
	out, err := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	seen := 0
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, module) {
			continue
		}
		seen++
		if !allowed[p] {
			t.Errorf("im/client depends on %s; it may use only im/imv1 and im/wire of this module", p)
		}
	}
	if seen == 0 {
		t.Fatalf("go list named no package of %s; is the module path right?\n%s", module, out)
	}
}
