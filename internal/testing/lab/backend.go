package lab

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

// Environment of a backend process: the lab starts its own binary again in
// a backend's namespace with these set (see MaybeRunBackend).
const (
	envBackendName = "HAKEEPER_LAB_BACKEND"
	envBackendDir  = "HAKEEPER_LAB_BACKEND_DIR"
)

// BackendPort is where every lab backend listens.
const BackendPort = 8080

// MaybeRunBackend turns this process into a lab backend when the lab
// started it as one, and never returns then. Call it first in TestMain or
// main of any program that runs a lab.
func MaybeRunBackend() {
	name := os.Getenv(envBackendName)
	if name == "" {
		return
	}
	dir := os.Getenv(envBackendDir)
	err := serveBackend(name, dir)
	fmt.Fprintln(os.Stderr, "lab backend:", err)
	os.Exit(1)
}

// serveBackend answers who it is: "backend=NAME path=PATH", and /healthz,
// which fails while the file DIR/NAME.down exists (tests use it to fail a
// health check without stopping the server).
func serveBackend(name, dir string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := os.Stat(filepath.Join(dir, name+".down")); err == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend=%s path=%s\n", name, r.URL.Path)
	})
	l, err := net.Listen("tcp", fmt.Sprintf(":%d", BackendPort))
	if err != nil {
		return err
	}
	return http.Serve(l, mux)
}
