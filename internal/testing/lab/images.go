package lab

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// Images are the images `make images` built from the Dockerfile (and the
// lab's pause and echo images), with the archives each node's containerd
// imports: no registry is involved.
type Images struct {
	Manager, DataPlane, Pause, Echo                             string
	ManagerArchive, DataPlaneArchive, PauseArchive, EchoArchive string
}

// ImagesFile is where hack/images.sh writes what it built.
func ImagesFile() string { return filepath.Join(testenv.RepoRoot(), "bin", "images.env") }

// LoadImages reads what hack/images.sh wrote: KEY=VALUE lines.
func LoadImages(path string) (Images, error) {
	f, err := os.Open(path)
	if err != nil {
		return Images{}, fmt.Errorf("no images: run `make images` (make test and make demo do): %w", err)
	}
	defer f.Close()
	vars := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), "="); ok && !strings.HasPrefix(k, "#") {
			vars[k] = v
		}
	}
	if err := s.Err(); err != nil {
		return Images{}, err
	}
	im := Images{
		Manager: vars["MANAGER_IMAGE"], DataPlane: vars["DATAPLANE_IMAGE"], Pause: vars["PAUSE_IMAGE"], Echo: vars["ECHO_IMAGE"],
		ManagerArchive: vars["MANAGER_ARCHIVE"], DataPlaneArchive: vars["DATAPLANE_ARCHIVE"], PauseArchive: vars["PAUSE_ARCHIVE"],
		EchoArchive: vars["ECHO_ARCHIVE"],
	}
	for name, v := range map[string]string{
		"MANAGER_IMAGE": im.Manager, "DATAPLANE_IMAGE": im.DataPlane, "PAUSE_IMAGE": im.Pause,
		"MANAGER_ARCHIVE": im.ManagerArchive, "DATAPLANE_ARCHIVE": im.DataPlaneArchive, "PAUSE_ARCHIVE": im.PauseArchive,
		"ECHO_IMAGE": im.Echo, "ECHO_ARCHIVE": im.EchoArchive,
	} {
		if v == "" {
			return Images{}, fmt.Errorf("%s has no %s: run `make images`", path, name)
		}
	}
	for _, a := range im.archives() {
		if _, err := os.Stat(a); err != nil {
			return Images{}, fmt.Errorf("image archive missing: run `make images`: %w", err)
		}
	}
	return im, nil
}

// archives are every image archive a node imports.
func (im Images) archives() []string {
	return []string{im.PauseArchive, im.DataPlaneArchive, im.ManagerArchive, im.EchoArchive}
}
