package lab

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Stop makes Poll return err at once instead of waiting on.
func Stop(err error) error { return stopped{err} }

type stopped struct{ err error }

func (s stopped) Error() string { return s.err.Error() }

// Poll calls cond every interval until it returns nil, and returns the
// last error it gave once timeout has passed (or ctx ended): the one wait
// the lab and its tests use, bounded in time and in count. An error
// wrapped by Stop ends the wait at once (a process that exited will not
// answer later).
func Poll(ctx context.Context, every, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		var s stopped
		if errors.As(err, &s) {
			return s.err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(min(every, time.Until(deadline))):
		}
	}
}
