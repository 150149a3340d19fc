package agent

import (
	"reflect"
	"strings"
	"testing"
)

const baseCfg = `global
    master-worker

backend be_web
    mode http
    balance roundrobin
    server vm1 198.18.0.21:8080 weight 100
    server ep_1 198.18.0.23:8080 weight 100
    server ep_2 0.0.0.0:1 weight 100 disabled
`

func TestRuntimeCommands(t *testing.T) {
	tests := []struct {
		name   string
		from   string
		to     string
		want   []string
		reload bool
	}{
		{"no change", "", "", nil, false},
		{"weight", "server vm1 198.18.0.21:8080 weight 100", "server vm1 198.18.0.21:8080 weight 50",
			[]string{"set server be_web/vm1 weight 50"}, false},
		{"endpoint fills a slot", "server ep_2 0.0.0.0:1 weight 100 disabled", "server ep_2 198.18.0.24:8080 weight 100",
			[]string{"set server be_web/ep_2 addr 198.18.0.24 port 8080", "set server be_web/ep_2 state ready"}, false},
		{"endpoint leaves", "server ep_1 198.18.0.23:8080 weight 100", "server ep_1 0.0.0.0:1 weight 100 disabled",
			[]string{"set server be_web/ep_1 addr 0.0.0.0 port 1", "set server be_web/ep_1 state maint"}, false},
		{"IPv6 endpoint", "server ep_1 198.18.0.23:8080 weight 100", "server ep_1 [2001:db8::5]:8080 weight 100",
			[]string{"set server be_web/ep_1 addr 2001:db8::5 port 8080"}, false},
		{"balance change", "balance roundrobin", "balance leastconn", nil, true},
		{"new server", "    server ep_2 0.0.0.0:1 weight 100 disabled\n", "    server ep_2 0.0.0.0:1 weight 100 disabled\n    server ep_3 0.0.0.0:1 weight 100 disabled\n", nil, true},
		{"backup flag", "server vm1 198.18.0.21:8080 weight 100", "server vm1 198.18.0.21:8080 weight 100 backup", nil, true},
		{"DNS name", "server vm1 198.18.0.21:8080 weight 100", "server vm1 db.example.internal:8080 weight 100", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newCfg := strings.Replace(baseCfg, tt.from, tt.to, 1)
			cmds, ok := runtimeCommands(baseCfg, newCfg)
			if ok == tt.reload {
				t.Fatalf("runtime-applicable = %v, want %v", ok, !tt.reload)
			}
			if !reflect.DeepEqual(cmds, tt.want) {
				t.Errorf("got %q, want %q", cmds, tt.want)
			}
		})
	}
}
