package haproxyapi

import "testing"

// TestParseShowProc reads HAProxy 2.6's `show proc` as the master CLI
// printed it here after a reload that could not bind a port.
func TestParseShowProc(t *testing.T) {
	const out = `#<PID>          <type>          <reloads>       <uptime>        <version>      
7394            master          1 [failed: 1]   0d00h00m05s     2.6.12-1+deb12u4
# workers
7395            worker          1               0d00h00m05s     2.6.12-1+deb12u4
# programs
`
	got, ok := ParseShowProc(out)
	if !ok || got != (MasterState{Reloads: 1, Failed: 1}) {
		t.Errorf("got %+v %v", got, ok)
	}
	if _, ok := ParseShowProc("Unknown command"); ok {
		t.Error("read a master from nothing")
	}
}
