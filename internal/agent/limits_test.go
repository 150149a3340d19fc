package agent

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/hakeeper/hakeeper/internal/contract"
)

func TestFileLimit(t *testing.T) {
	cfg := "global\n    master-worker\n    maxconn 20000\ndefaults\n    maxconn 5\nfrontend f\n    maxconn 7\n"
	if n, ok := globalMaxconn(cfg); !ok || n != 20000 {
		t.Fatalf("global maxconn %d %v, want 20000 (not the other sections')", n, ok)
	}
	if err := fileLimitError(cfg, 1<<20); err != nil {
		t.Errorf("refused under a 1M limit: %v", err)
	}
	err := fileLimitError(cfg, 20000)
	if err == nil || !strings.Contains(err.Error(), "maxconn 20000 needs about 40100 open files, and this node allows 20000") ||
		!strings.Contains(err.Error(), "at most 9950") {
		t.Errorf("got %v", err)
	}
	if err := fileLimitError("global\n    master-worker\n", 10); err != nil {
		t.Errorf("no maxconn, refused: %v", err)
	}
}

// TestBindConflicts: a port another process listens on is named; ports
// the old config bound already, and free ones, are not.
func TestBindConflicts(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().String()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	oldCfg := "frontend a\n    bind 127.0.0.1:1 transparent\n"
	newCfg := oldCfg + "frontend b\n    bind " + taken + " transparent\n    bind " + freeAddr + "\n    bind /var/run/x.sock mode 600\n"
	got := bindConflicts(oldCfg, newCfg)
	if got != "on this node bind "+taken+": address already in use" {
		t.Errorf("got %q", got)
	}
	if got := bindConflicts(newCfg, newCfg); got != "" {
		t.Errorf("the old config's own binds are not conflicts: %q", got)
	}
}

func TestServersOnThisNode(t *testing.T) {
	set := func(addrs ...string) contract.ServerSet {
		var list []contract.Server
		for i, a := range addrs {
			list = append(list, contract.Server{Name: "ep_" + strconv.Itoa(i+1), Address: a, Port: 80})
		}
		return contract.ServerSet{Backends: map[string][]contract.Server{"be_web": list}}
	}
	own := []string{"198.18.0.11", "10.244.0.1"}
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{[]string{"198.18.0.21", "0.0.0.0"}, ""},
		{[]string{"198.18.0.21", "10.244.0.1"}, "server ep_2 of be_web is at 10.244.0.1, an address of this node"},
		{[]string{"127.0.0.2"}, "is at 127.0.0.2"},
		{[]string{"::ffff:198.18.0.11"}, "an address of this node"},
	} {
		err := serversOnThisNode(set(tc.addrs...), own)
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.addrs, err, tc.want)
		}
	}
}
