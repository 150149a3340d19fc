package agent

import (
	"testing"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

func TestParseStats(t *testing.T) {
	out := `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight
fe_http,FRONTEND,,,0,0,20000,0,0,0,0,0,0,,,,,OPEN,
be_web,vm1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,100
be_web,ep_1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,100
be_web,ep_2,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,100
be_web,ep_3,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,100
be_web,BACKEND,0,0,0,0,2000,0,0,0,0,0,,0,0,0,0,UP,200
be_pg,db,0,0,0,0,,0,0,0,,0,,0,0,0,0,no check,100
`
	got, ok := parseStats(out)
	if !ok {
		t.Fatal("did not parse")
	}
	want := map[string]contract.BackendCount{"web": {Up: 2, Total: 3}, "pg": {Up: 1, Total: 1}}
	if len(got) != len(want) || got["web"] != want["web"] || got["pg"] != want["pg"] {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, ok := parseStats("Unknown command\n"); ok {
		t.Error("parsed an error answer")
	}
}

func TestParseNotify(t *testing.T) {
	for line, want := range map[string]v1alpha1.VRRPRole{
		`INSTANCE "hk_default_web" MASTER 150`: v1alpha1.VRRPRoleMaster,
		`INSTANCE "hk_default_web" BACKUP 100`: v1alpha1.VRRPRoleBackup,
		`INSTANCE "hk_default_web" FAULT 0`:    v1alpha1.VRRPRoleFault,
	} {
		if got, ok := parseNotify(line); !ok || got != want {
			t.Errorf("%q: got %q %v", line, got, ok)
		}
	}
	if _, ok := parseNotify(`GROUP "g" MASTER`); ok {
		t.Error("parsed a group line")
	}
}
