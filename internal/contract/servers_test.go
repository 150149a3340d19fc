package contract

import (
	"reflect"
	"strings"
	"testing"
)

func set(servers ...Server) ServerSet {
	return ServerSet{Skeleton: "0123456789abcdef", Backends: map[string][]Server{"be_web": servers}}
}

func TestRuntimeCommands(t *testing.T) {
	vm1 := Server{Name: "vm1", Address: "198.18.0.21", Port: 8080, Weight: 100}
	ep1 := Server{Name: "ep_1", Address: "198.18.0.23", Port: 8080, Weight: 100}
	empty := Server{Name: "ep_2", Address: "0.0.0.0", Port: 1, Weight: 100, Disabled: true}
	base := set(vm1, ep1, empty)
	with := func(f func(*ServerSet)) ServerSet {
		s := set(vm1, ep1, empty)
		s.Backends["be_web"] = append([]Server(nil), s.Backends["be_web"]...)
		f(&s)
		return s
	}
	tests := []struct {
		name   string
		to     ServerSet
		want   []string
		reload bool
	}{
		{"no change", base, nil, false},
		{"weight", with(func(s *ServerSet) { s.Backends["be_web"][0].Weight = 50 }), []string{"set server be_web/vm1 weight 50"}, false},
		{"endpoint fills a slot", with(func(s *ServerSet) {
			s.Backends["be_web"][2] = Server{Name: "ep_2", Address: "198.18.0.24", Port: 8080, Weight: 100}
		}), []string{"set server be_web/ep_2 addr 198.18.0.24 port 8080", "set server be_web/ep_2 state ready"}, false},
		{"endpoint leaves", with(func(s *ServerSet) {
			s.Backends["be_web"][1] = Server{Name: "ep_1", Address: "0.0.0.0", Port: 1, Weight: 100, Disabled: true}
		}), []string{"set server be_web/ep_1 addr 0.0.0.0 port 1", "set server be_web/ep_1 state maint"}, false},
		{"IPv6 endpoint", with(func(s *ServerSet) { s.Backends["be_web"][1].Address = "2001:db8::5" }),
			[]string{"set server be_web/ep_1 addr 2001:db8::5 port 8080"}, false},
		{"skeleton changed", with(func(s *ServerSet) { s.Skeleton = "fedcba9876543210" }), nil, true},
		{"new server", with(func(s *ServerSet) {
			s.Backends["be_web"] = append(s.Backends["be_web"], Server{Name: "ep_3", Address: "0.0.0.0", Port: 1})
		}), nil, true},
		{"server renamed", with(func(s *ServerSet) { s.Backends["be_web"][0].Name = "vm9" }), nil, true},
		{"new backend", with(func(s *ServerSet) { s.Backends["be_api"] = nil }), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, ok := RuntimeCommands(base, tt.to)
			if ok == tt.reload {
				t.Fatalf("runtime-applicable = %v, want %v", ok, !tt.reload)
			}
			if !reflect.DeepEqual(cmds, tt.want) {
				t.Errorf("got %q, want %q", cmds, tt.want)
			}
		})
	}
	if _, ok := RuntimeCommands(ServerSet{}, base); ok {
		t.Error("an unknown running config was changed at run time")
	}
}

func TestServerSetValidate(t *testing.T) {
	good := set(Server{Name: "ep_1", Address: "198.18.0.23", Port: 8080, Weight: 100})
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]ServerSet{
		"command in a name":   set(Server{Name: "a\nshutdown", Address: "198.18.0.23", Port: 1}),
		"name with a space":   set(Server{Name: "a b", Address: "198.18.0.23", Port: 1}),
		"address not an IP":   set(Server{Name: "a", Address: "example.com", Port: 1}),
		"address with a zone": set(Server{Name: "a", Address: "fe80::1%eth0", Port: 1}),
		"port 0":              set(Server{Name: "a", Address: "198.18.0.23"}),
		"weight 300":          set(Server{Name: "a", Address: "198.18.0.23", Port: 1, Weight: 300}),
		"backend not a proxy": {Skeleton: "0123456789abcdef", Backends: map[string][]Server{"fe_x": nil}},
		"skeleton not a hash": {Skeleton: "x", Backends: nil},
	} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), KeyServers) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func TestValidateTLSSecrets(t *testing.T) {
	if err := ValidateTLSSecrets(map[string]string{"https": "shop.tls"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []map[string]string{{"../../etc/cron.d/x": "s"}, {"https": "a/b"}, {"HTTPS": "s"}} {
		if err := ValidateTLSSecrets(bad); err == nil || !strings.Contains(err.Error(), KeyTLS) {
			t.Errorf("%v: got %v", bad, err)
		}
	}
}
