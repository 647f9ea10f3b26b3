package train

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/corinfomax/corinfomax/model"
)

// lockRunDir takes an exclusive flock on RUNDIR/.lock so that two processes
// never train into the same directory. The kernel drops the lock when the
// holder dies, so a killed run never leaves it stuck.
func lockRunDir(dir string) (func(), error) {
	path := model.RunDir(dir).Lock()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		holder := strings.TrimSpace(string(b))
		if holder == "" {
			holder = "another process"
		}
		return nil, fmt.Errorf("run directory %s is in use by %s (lock %s): wait for it to finish or use another --out", dir, holder, path)
	}
	f.Truncate(0)
	fmt.Fprintf(f, "pid %d\n", os.Getpid())
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
