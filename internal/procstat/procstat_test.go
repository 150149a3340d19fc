package procstat

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	// A command with spaces and a closing parenthesis, as a process may
	// name itself.
	const line = "4242 (evil) (x y) S 17 4242 4242 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 123456 1000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	s, err := Parse(4242, line)
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{PID: 4242, Comm: "evil) (x y", State: 'S', PPID: 17, UTime: 7, STime: 3, CUTime: 2, CSTime: 1, StartTime: 123456}
	if s != want {
		t.Errorf("Parse = %+v, want %+v", s, want)
	}
	for _, bad := range []string{"", "4242 evil S 1", "4242 (x) S 1 2 3", "4242 (x) S notapid 4242 4242 0 -1 0 0 0 0 0 7 3 2 1 20 0 1 0 1"} {
		if _, err := Parse(4242, bad); err == nil {
			t.Errorf("Parse(%q) passed", bad)
		}
	}
}

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil || s.PID != os.Getpid() || s.PPID != os.Getppid() || s.StartTime == 0 || s.Zombie() {
		t.Errorf("Read(self) = %+v, %v", s, err)
	}
}
