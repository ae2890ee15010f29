package e2e

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needSipvicious(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"svmap", "svwar", "svcrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("E2E_REQUIRE_SIPVICIOUS") != "" {
				t.Fatalf("%s not installed (apt-get install sipvicious)", tool)
			}
			t.Skipf("%s not installed (apt-get install sipvicious)", tool)
		}
	}
}

// sipvicious runs one of its tools against the edge and returns its
// output.
func (e *edge) sipvicious(t *testing.T, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append(args, "-p", strconv.Itoa(e.sipPort), "127.0.0.1")
	out, err := exec.CommandContext(ctx, tool, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s %v did not finish: %v\n%s", tool, args, ctx.Err(), out)
	}
	_ = err // the tools exit non-zero when they find nothing
	return string(out)
}

// extensionRow matches a row of svwar's or svcrack's result table naming
// one of the example agents.
var extensionRow = regexp.MustCompile(`\|\s*100[123]\s*\|`)

// TestSipvicious runs sipvicious against the binary on loopback: with the
// default settings its User-Agent is dropped and svmap finds nothing; with
// the scanner check off, svwar learns no extension with any method it
// tries (unknown and existing users get the same answer) and svcrack does
// not find agent 1001's password (1234) in a range that holds it, because
// the user is banned after GUARD_MAX_AUTH_FAILURES failures.
func TestSipvicious(t *testing.T) {
	needSipvicious(t)
	t.Run("scanner dropped", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t)
		out := e.sipvicious(t, "svmap")
		if strings.Contains(out, "routr-go") || !strings.Contains(out, "found nothing") {
			t.Errorf("svmap found the edge:\n%s", out)
		}
	})
	t.Run("scanner check off", func(t *testing.T) {
		t.Parallel()
		e := startEdge(t, "GUARD_SCANNER_USER_AGENTS=none", "GUARD_MAX_AUTH_FAILURES=5")
		for _, method := range []string{"REGISTER", "INVITE", "OPTIONS"} {
			t.Run("svwar "+method, func(t *testing.T) {
				t.Parallel()
				out := e.sipvicious(t, "svwar", "-e1000-1010", "-m", method, "--force", "--domain", "sip.local")
				if extensionRow.MatchString(out) {
					t.Errorf("svwar -m %s learned an extension:\n%s", method, out)
				}
			})
		}
		t.Run("svcrack", func(t *testing.T) {
			t.Parallel()
			// 1234 is the 15th password tried, past the cap of 5 failures.
			out := e.sipvicious(t, "svcrack", "-u", "1001", "-r", "1220-1240", "--domain", "sip.local")
			if strings.Contains(out, "1234") || !strings.Contains(out, "found nothing") {
				t.Errorf("svcrack cracked 1001:\n%s", out)
			}
		})
	})
}
