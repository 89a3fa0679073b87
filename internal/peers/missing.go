//go:build linux

package peers

import (
	"os"
	"os/exec"
	"path/filepath"
)

// Missing names the third-party peers this machine lacks (empty when all are
// installed), for a one-line notice before the interop tests skip.
func Missing() []string {
	var missing []string
	dir, err := NodeModulesDir()
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "ws", "package.json"))
	}
	if _, lerr := exec.LookPath("node"); err != nil || lerr != nil {
		missing = append(missing, "npm ws")
	}
	if _, err := os.Stat(PythonPath); err != nil || exec.Command(PythonPath, "-I", "-c", "import websockets.legacy.server").Run() != nil {
		missing = append(missing, "python3-websockets")
	}
	if _, err := NginxPath(); err != nil {
		missing = append(missing, "nginx")
	}
	return missing
}
